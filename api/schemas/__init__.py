"""Pydantic models at the HTTP edge (requests and responses); services take plain values."""
