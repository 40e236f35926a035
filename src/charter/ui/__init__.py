"""The explorer: a page every node serves at ``/explorer``, drawn from its own API."""

from charter.ui.routes import EXPLORER_URL, explorer_router, static_router

__all__ = ["EXPLORER_URL", "explorer_router", "static_router"]
