"""The commands of the ``zhili`` CLI, one module an area (attached in api/cli.py); what
they share is in ``api.commands.common``."""
