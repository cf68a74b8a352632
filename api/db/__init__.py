"""Database layer: typed models, portable types, engines, migrations."""

from api.db import saved as _saved  # noqa: F401  (saved views and walls join Base)
