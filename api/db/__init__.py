"""Database layer: typed models, portable types, engines, migrations."""
