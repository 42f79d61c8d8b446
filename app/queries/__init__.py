"""The query side: what the faces read, shaped for them, beside the domain.

The domain (app/domain) holds the rules of every change and the reads they
need; what only answers questions lives here (cosmicpython's ``views.py``):
the projections of records a compiled GraphQL plan writes
(:mod:`.projection`), the lists written as JSON by the storage
(:mod:`.written`, with PostgreSQL's SQL in :mod:`.sql`), and the batched reads
of one request or one subscription event (:mod:`.reads`). Each keeps the read
rule it stands for (only the caller's own sessions).
"""
