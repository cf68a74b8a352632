"""Database layer: typed models, portable types, engines, migrations."""

from api.db import risk  # noqa: F401  (the register's tables join Base's metadata)
