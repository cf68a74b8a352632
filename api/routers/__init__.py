"""HTTP routers: thin, one module per resource, each route calls a service."""
