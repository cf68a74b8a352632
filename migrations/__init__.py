"""Alembic migrations: every schema change, for SQLite and PostGIS alike."""
