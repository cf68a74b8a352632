"""Database layer: typed models, portable types, engines, migrations."""

# the case desk's tables join Base.metadata wherever the models are imported
import api.db.desk  # noqa: F401
