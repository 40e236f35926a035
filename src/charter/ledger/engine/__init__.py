"""The sans-I/O ledger engine: what every node does with the committed log.

- ``tx``: transactions (write sets over named tables) and their canonical digest.
- ``entries``: the signed batch, signature and snapshot-evidence entry formats.
- ``kv``: the key-value state, with committed reads and snapshot form.
- ``outcomes``: statuses, per-apply results, divergence alarms.
- ``waiters``: who waits for which transactions, settled from apply results.
- ``commands``: transactions whose writes a registered handler computes on apply.
- ``nodes``: the node directory (``charter.nodes``) governance maintains.
- ``engine``: ``Engine``, fed committed Raft entries; seqnos, leaves, signatures,
  statuses, receipts, snapshots.
"""

from charter.ledger.engine.commands import (
    Command,
    CommandContext,
    CommandHandler,
    CommandRefused,
    NodeRecord,
    StateView,
)
from charter.ledger.engine.engine import (
    LATEST,
    SIGNATURES_TABLE,
    SNAPSHOTS_TABLE,
    Engine,
    parse_tx_id,
)
from charter.ledger.engine.entries import (
    encode_batch_body,
    parse_entry,
    seal_batch,
    sign_batch,
    signature_entry,
)
from charter.ledger.engine.errors import (
    BatchFormatError,
    EngineError,
    EngineHaltedError,
    EngineOrderError,
    EngineSnapshotError,
    ReceiptUnavailableError,
    TransactionError,
)
from charter.ledger.engine.kv import KVStore
from charter.ledger.engine.nodes import NODES_TABLE, DirectoryEntry, NodeStatus
from charter.ledger.engine.outcomes import (
    AppliedTx,
    ApplyResult,
    DivergenceAlarm,
    EntryKind,
    TxStatus,
)
from charter.ledger.engine.tx import Transaction, Write
from charter.ledger.engine.waiters import Settled, Waiters

__all__ = [
    "LATEST",
    "NODES_TABLE",
    "SIGNATURES_TABLE",
    "SNAPSHOTS_TABLE",
    "AppliedTx",
    "ApplyResult",
    "BatchFormatError",
    "Command",
    "CommandContext",
    "CommandHandler",
    "CommandRefused",
    "DirectoryEntry",
    "DivergenceAlarm",
    "Engine",
    "EngineError",
    "EngineHaltedError",
    "EngineOrderError",
    "EngineSnapshotError",
    "EntryKind",
    "KVStore",
    "NodeRecord",
    "NodeStatus",
    "ReceiptUnavailableError",
    "Settled",
    "StateView",
    "Transaction",
    "TransactionError",
    "TxStatus",
    "Waiters",
    "Write",
    "encode_batch_body",
    "parse_entry",
    "parse_tx_id",
    "seal_batch",
    "sign_batch",
    "signature_entry",
]
