"""CapTP: wire messages and the sans-I/O session state machine.

Nothing here touches sockets, clocks or event loops: a ``Session`` is fed decoded
Syrup values and returns events for the runtime and encoded messages to send.
"""

from charter.ocapn.captp.errors import CapTPError, ProtocolError, SessionAbortedError
from charter.ocapn.captp.messages import Dialect
from charter.ocapn.captp.session import Session

__all__ = ["CapTPError", "Dialect", "ProtocolError", "Session", "SessionAbortedError"]
