"""`make bench`: side-by-side throughput of the service, a bare baseline and PostGraphile."""
