"""Point-to-point data between member nodes over OCapN: signed batches and blobs.

``Transfer`` is what the multi-party component holds: ``send_batch`` (at-least-once,
persisted outbox), ``on_batch`` (verified batches from authenticated member nodes),
blob pulls from the sending node with ``on_blob``/``blob_ready``, the ``BlobStore`` and
the blob REST routers. See ``docs/messages.md`` ("Data transfer and blobs").
"""

from charter.multiparty.transfer.blobs import (
    DEFAULT_MAX_BLOB_BYTES,
    BlobInfo,
    BlobStore,
    BlobWriter,
    PartialBlob,
    parse_hash,
)
from charter.multiparty.transfer.errors import (
    BlobError,
    BlobNotFound,
    BlobTooLarge,
    OutboxFull,
    TransferError,
    TransferRefused,
)
from charter.multiparty.transfer.gate import InboxGate, authenticated_peer
from charter.multiparty.transfer.model import (
    BlobProgress,
    BlobState,
    InboundBatch,
    OnBatch,
    OnBlob,
    TransferSettings,
    TransferStats,
)
from charter.multiparty.transfer.peers import LedgerPeers, PeerDirectory, PeerNode
from charter.multiparty.transfer.transfer import Transfer
from charter.multiparty.transfer.wire import BlobRef, inbox_swiss, sign_batch, verify_batch

__all__ = [
    "DEFAULT_MAX_BLOB_BYTES",
    "BlobError",
    "BlobInfo",
    "BlobNotFound",
    "BlobProgress",
    "BlobRef",
    "BlobState",
    "BlobStore",
    "BlobTooLarge",
    "BlobWriter",
    "InboundBatch",
    "InboxGate",
    "LedgerPeers",
    "OnBatch",
    "OnBlob",
    "OutboxFull",
    "PartialBlob",
    "PeerDirectory",
    "PeerNode",
    "Transfer",
    "TransferError",
    "TransferRefused",
    "TransferSettings",
    "TransferStats",
    "authenticated_peer",
    "inbox_swiss",
    "parse_hash",
    "sign_batch",
    "verify_batch",
]
