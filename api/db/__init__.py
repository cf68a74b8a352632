"""Database layer: typed models, portable types, engines, migrations."""

# the case desk's tables join Base.metadata wherever the models are imported
import api.db.desk  # noqa: F401
from api.db import (
    populations,  # noqa: F401  (its tables join Base.metadata)
    risk,  # noqa: F401  (the register's tables join Base's metadata)
)
from api.db import saved as _saved  # noqa: F401  (saved views and walls join Base)
