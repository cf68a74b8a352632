"""``python -m api`` is the ``zhili`` command."""

from api.cli import main

main()
