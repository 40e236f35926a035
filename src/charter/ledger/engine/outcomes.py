"""What the engine reports: transaction status, per-apply outcomes, divergence alarms."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from charter.crypto.certs import Certificate
from charter.crypto.keys import P256PrivateKey
from charter.ledger.engine.commands import Command
from charter.ledger.engine.tx import Write
from charter.ledger.signatures import SignedRoot, sign_signed_root


class TxStatus(StrEnum):
    UNKNOWN = "Unknown"
    """Never applied here (or the seqno belongs to another view)."""
    PENDING = "Pending"
    """Applied from a committed Raft entry, not yet covered by a signature."""
    COMMITTED = "Committed"
    """Covered by a later committed signature transaction whose root matched ours."""
    INVALID = "Invalid"
    """Rejected on apply; it holds a leaf with an empty write set and changed nothing."""


class EntryKind(StrEnum):
    TX = "tx"
    SIGNATURE = "signature"
    SNAPSHOT_EVIDENCE = "snapshot-evidence"
    MALFORMED = "malformed"


class AppliedTx(NamedTuple):
    """One leaf the engine added: an application transaction or one of its own.

    A named tuple (immutable, and cheaper to build than a frozen dataclass): the engine
    makes one per leaf and every listener of an apply reads them.
    """

    tx_id: str
    seqno: int
    kind: EntryKind
    status: TxStatus
    reason: str | None = None
    submitter: str | None = None
    batch_seq: int | None = None
    client_ref: str = ""
    command: Command | None = None
    """The command this transaction ran, if it was one (Invalid ones too)."""
    writes: tuple[Write, ...] = ()
    """For a command that applied: the writes it made."""


@dataclass(frozen=True, slots=True)
class DivergenceAlarm:
    """A signed root that does not match the root this node computed over the same leaves.

    ``received`` is the leader's signature as it was in the log; ``computed_root`` is
    ours. ``countersign`` turns ours into a signed root too, so that the evidence is two
    signed, conflicting roots over the same tree size.
    """

    tx_id: str
    seqno: int
    received: SignedRoot
    computed_root: bytes

    @property
    def tree_size(self) -> int:
        return self.received.tree_size

    def countersign(self, key: P256PrivateKey, cert: Certificate, now_ms: int) -> SignedRoot:
        return sign_signed_root(
            key,
            cert,
            view=self.received.view,
            seqno=self.received.seqno,
            root=self.computed_root,
            iat=now_ms // 1000,
        )


@dataclass(slots=True)
class ApplyResult:
    """What one ``Engine.apply`` call did, for the driver and for status waiters."""

    applied: list[AppliedTx] = field(default_factory=list)
    committed: list[str] = field(default_factory=list)
    """Transaction ids that became Committed in this call (Invalid ones excluded)."""
    alarms: list[DivergenceAlarm] = field(default_factory=list)
    applied_index: int = 0
    """The Raft index of the last entry applied (entries after a halt are not)."""
    halted: bool = False
    signature_due: bool = False
    snapshot_due: bool = False
    _tables: frozenset[str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def invalid(self) -> list[AppliedTx]:
        return [t for t in self.applied if t.status is TxStatus.INVALID]

    @property
    def tables(self) -> frozenset[str]:
        """The tables the applied commands wrote: several listeners of an apply look for
        one table, and this walks the writes once for all of them."""
        if self._tables is None:
            self._tables = frozenset(w.table for tx in self.applied for w in tx.writes)
        return self._tables
