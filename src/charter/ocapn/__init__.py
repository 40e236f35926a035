"""OCapN: CapTP sessions, netlayers and the capability runtime."""
