"""Boundaries: import with a validation report, display geometry, point location, export."""
