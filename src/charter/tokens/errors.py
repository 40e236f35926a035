"""Errors of the tokens layer raised before anything reaches the ledger."""

from __future__ import annotations

from charter.errors import CharterError


class TokensError(CharterError):
    """A malformed token operation (refused before it is submitted)."""

    code = "tokens.invalid"


__all__ = ["TokensError"]
