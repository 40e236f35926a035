"""Typed CapTP errors; each one a session meets on input ends in ``op:abort``."""

from __future__ import annotations

from charter.errors import CharterError


class CapTPError(CharterError):
    """Base of CapTP errors."""

    code = "ocapn.captp"


class ProtocolError(CapTPError):
    """The peer sent something the protocol forbids; the session aborts."""

    code = "ocapn.captp.protocol"


class HandshakeError(ProtocolError):
    """``op:start-session`` is missing, malformed, of another version or badly signed."""

    code = "ocapn.captp.handshake"


class SessionAbortedError(CapTPError):
    """The session was aborted (by either side) and accepts no more traffic."""

    code = "ocapn.captp.aborted"


class NotPassableError(CapTPError):
    """A value cannot be sent over CapTP (no Syrup form and not a reference)."""

    code = "ocapn.captp.not_passable"
