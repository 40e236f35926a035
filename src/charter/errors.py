"""The root of Charter's typed errors.

Every error a user can meet carries a stable, machine-readable ``code`` so that the
CLI can print a one-line message and the REST API a problem+json body without
string matching.
"""

from __future__ import annotations


class CharterError(Exception):
    """Base class of all Charter errors; ``code`` is stable across releases."""

    code: str = "charter.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code
