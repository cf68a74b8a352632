"""Commands of the ``zhili`` CLI that live beside their area (attached in api/cli.py)."""
