"""The node's REST API: FastAPI app, routes, problem+json errors."""
