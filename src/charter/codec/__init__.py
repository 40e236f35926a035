"""Canonical encodings: Syrup is what Charter hashes, signs and sends."""
