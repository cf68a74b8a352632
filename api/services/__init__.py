"""Service functions: the application's logic, called by routers, the CLI, seed and geo."""
