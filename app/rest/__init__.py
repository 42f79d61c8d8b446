"""The REST face: Litestar controllers for the documented paths."""
