"""Database layer: typed models, portable types, engines, migrations."""

from api.db import populations  # noqa: F401  (its tables join Base.metadata)
