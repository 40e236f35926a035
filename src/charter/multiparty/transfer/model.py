"""What the transfer's users see: its settings, a received batch, blob progress, counters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from charter.multiparty.transfer.blobs import DEFAULT_MAX_BLOB_BYTES
from charter.multiparty.transfer.wire import BlobRef
from charter.node.raft_transport import Backoff

__all__ = [
    "BlobProgress",
    "BlobState",
    "InboundBatch",
    "OnBatch",
    "OnBlob",
    "TransferSettings",
    "TransferStats",
]


@dataclass(frozen=True)
class TransferSettings:
    """Tunables of one node's transfer (component settings key ``"transfer"``)."""

    max_batch_bytes: int = 4 << 20
    """Largest batch sent or accepted."""
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES
    """Largest blob uploaded, served or fetched."""
    chunk_bytes: int = 256 << 10
    """Bytes asked for per ``read-blob``."""
    window: int = 8
    """Batches in flight to one recipient."""
    fetch_window: int = 4
    """Chunks in flight for one blob."""
    max_fetches: int = 4
    """Blobs fetched at once."""
    max_outbox_bytes: int = 256 << 20
    """Undelivered batch bytes kept before ``send_batch`` answers ``OutboxFull``."""
    max_source_refusals: int = 3
    """Refusals (or hash mismatches) from the sources before a fetch is marked failed."""
    connect_timeout: float = 5.0
    call_timeout: float = 30.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base=0.05, cap=2.0))
    remember_batches: int = 65536
    """Hashes of batches handed up that are remembered to drop duplicates."""
    max_inflight_per_sender: int = 64
    """Batches of one sender being handed up at once; more are turned away (resent later)."""
    remember_fetches: int = 1024
    """Finished fetches still listed with their outcome (``transfers()``)."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> TransferSettings:
        """Settings from a plain mapping (unknown keys are an error, not ignored)."""
        values = dict(values or {})
        backoff = values.pop("backoff", None)
        s = cls(**values)
        if isinstance(backoff, dict):
            s = replace(s, backoff=Backoff(**backoff))
        elif isinstance(backoff, Backoff):
            s = replace(s, backoff=backoff)
        return s


@dataclass(frozen=True, slots=True)
class InboundBatch:
    """A verified batch from an authenticated member node."""

    sender: str
    """The node the session proved to be (never a name the batch claims)."""
    hash: bytes
    data: bytes
    """Exactly the bytes that hash to ``hash`` and that ``sender`` signed."""
    signature: bytes
    blobs: tuple[BlobRef, ...]
    """Blobs the sender granted this node; the transfer fetches them from the sender."""


class BlobState(StrEnum):
    WAITING = "waiting"
    FETCHING = "fetching"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class BlobProgress:
    hash: bytes
    size: int
    received: int
    state: BlobState
    sources: tuple[str, ...]
    reason: str | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.size == 0 else self.received / self.size

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash.hex(),
            "size": str(self.size),
            "received": str(self.received),
            "progress": round(self.fraction, 4),
            "state": self.state.value,
            "sources": list(self.sources),
            "reason": self.reason,
        }


OnBatch = Callable[[InboundBatch], Awaitable[bool | None]]
"""Keep the batch (idempotently: it may come again); return to acknowledge, raise to
have it resent later. Returning ``False`` acknowledges a batch the application will not
use (malformed, not for this node): its blobs are then not fetched."""
OnBlob = Callable[[BlobProgress], None]
"""Told when a fetched blob became ``ready`` or ``failed``; must be quick and not raise."""


@dataclass
class TransferStats:
    batches_sent: int = 0
    batches_acked: int = 0
    batches_refused_by_peer: int = 0
    delivery_retries: int = 0
    batches_received: int = 0
    duplicates: int = 0
    turned_away: int = 0
    refused_malformed: int = 0
    refused_hash: int = 0
    refused_signature: int = 0
    chunks_served: int = 0
    chunks_refused: int = 0
    chunks_fetched: int = 0
    bytes_fetched: int = 0
    fetch_retries: int = 0
    blobs_ready: int = 0
    blobs_failed: int = 0
