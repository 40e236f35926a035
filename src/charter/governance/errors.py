"""Typed governance errors; each carries a stable ``gov.*`` code."""

from __future__ import annotations

from charter.errors import CharterError


class GovernanceError(CharterError):
    code = "gov.error"


class RequestFormatError(GovernanceError):
    """Bytes that are not a well-formed governance record."""

    code = "gov.request.format"


class RequestSignatureError(GovernanceError):
    """A signature that does not verify over the stored request bytes."""

    code = "gov.request.signature"


class GenesisError(GovernanceError):
    """A network file's constitution section that cannot be the genesis constitution."""

    code = "gov.genesis"


class AuditError(GovernanceError):
    """The governance history could not be read for an audit."""

    code = "gov.audit"


__all__ = [
    "AuditError",
    "GenesisError",
    "GovernanceError",
    "RequestFormatError",
    "RequestSignatureError",
]
