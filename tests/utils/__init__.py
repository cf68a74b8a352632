"""Small helpers that build objects for tests."""
