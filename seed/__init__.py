"""Deterministic synthetic worlds: from a county town to a metropolis."""
