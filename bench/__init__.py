"""Benchmarks that print figures (never part of the test command). ``python -m bench``."""
