"""Zhili (治理) backend: FastAPI routers over plain service functions."""
