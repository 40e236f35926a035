"""Netlayers: how CapTP bytes travel between two peers (TLS, Unix sockets, plain TCP for tests, memory)."""
