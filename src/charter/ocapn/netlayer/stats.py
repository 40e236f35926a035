"""Per-connection traffic counters, kept by every netlayer.

Counting chunks written is how tests prove protocol properties on the wire, such
as three pipelined calls leaving in one write, and it costs two additions per write.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ConnectionStats:
    """What one side of a connection has sent and received (application bytes)."""

    writes: int = 0
    bytes_written: int = 0
    reads: int = 0
    bytes_read: int = 0
