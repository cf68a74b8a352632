"""Database layer: typed models, portable types, engines, migrations."""

from api.db import populations  # noqa: E402, F401  (its tables join Base.metadata)
