"""Typed errors of node-to-node delivery and blobs (stable codes under ``mp.transfer``/``mp.blob``)."""

from __future__ import annotations

from charter.errors import CharterError

__all__ = [
    "BlobError",
    "BlobNotFound",
    "BlobTooLarge",
    "OutboxFull",
    "TransferError",
    "TransferRefused",
]


class TransferError(CharterError):
    """Delivery between nodes failed or was misconfigured."""

    code = "mp.transfer"


class TransferRefused(TransferError):
    """A peer's request to this node's inbox was refused (not a member, malformed, forged)."""

    code = "mp.transfer.refused"


class OutboxFull(TransferError):
    """Too many undelivered batches are waiting; the caller should slow down and retry."""

    code = "mp.transfer.outbox_full"


class BlobError(CharterError):
    """A blob could not be stored, read or verified."""

    code = "mp.blob"


class BlobTooLarge(BlobError):
    """A blob exceeds the node's configured size limit; nothing of it was kept."""

    code = "mp.blob.too_large"


class BlobNotFound(BlobError):
    """No complete blob with that hash (or no data id naming a blob) is held here."""

    code = "mp.blob.not_found"
