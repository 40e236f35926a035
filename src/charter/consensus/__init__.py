"""Raft as a pure state machine, with a thin asyncio driver."""
