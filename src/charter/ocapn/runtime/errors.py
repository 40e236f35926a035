"""Errors a runtime user meets."""

from __future__ import annotations

from typing import Any

from charter.codec.syrup import Record, Symbol
from charter.errors import CharterError


class RuntimeClosedError(CharterError):
    """The runtime (or the session a reference lives on) is shut down."""

    code = "ocapn.runtime.closed"


class PromiseBrokenError(CharterError):
    """Awaiting a promise that broke; ``reason`` is the wire value it broke with."""

    code = "ocapn.promise.broken"

    def __init__(self, reason: Any) -> None:
        super().__init__(f"promise broken: {describe_reason(reason)}")
        self.reason = reason


class HandoffError(CharterError):
    """A third-party handoff certificate was refused."""

    code = "ocapn.handoff"


def describe_reason(reason: Any) -> str:
    """A short human text for a break reason (``<desc:error msg>`` or any value)."""
    if type(reason) is Record and reason.label == Symbol("desc:error") and reason.fields:
        return str(reason.fields[0])
    return repr(reason)[:200]
