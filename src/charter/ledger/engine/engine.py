"""The ledger engine: applies committed Raft entries to the tree, the state and statuses.

Sans-I/O: the node's driver feeds ``apply`` with committed entries in Raft order and
acts on the ``ApplyResult`` (wake waiters, propose a signature, take a snapshot,
raise an alarm). There is no clock inside; time arrives as arguments.

Every entry that carries transactions takes one Merkle leaf per transaction, valid or
not, so that every node's tree is the same. A leaf is CCF's
``leaf_hash(write_set_digest, commit_evidence, claims_digest)``; an Invalid
transaction's leaf has the empty write set's digest and zero claims. The commit
evidence nonce is ``HMAC-SHA256(network_secret, "charter-ce" || seqno)``: every
member can compute it, so unlike CCF's it proves nothing by itself (docs/ledger.md).

On a signature transaction whose root differs from the one this node computed, the
engine records a ``DivergenceAlarm`` with both roots and **halts**: it applies no
further entry (``EngineHaltedError``) until an operator restores it. Continuing would
mean building on a log that some signer disagrees with.
"""

from __future__ import annotations

import bisect
import hmac
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.consensus.types import Entry, EntryKind
from charter.crypto.certs import Certificate
from charter.crypto.errors import SignatureError
from charter.crypto.keys import Ed25519PublicKey, P256PrivateKey
from charter.ledger.engine.commands import (
    CMD_LABEL,
    Command,
    CommandContext,
    CommandHandler,
    CommandRefused,
    NodeRecord,
    check_writes,
)
from charter.ledger.engine.entries import (
    BatchEntry,
    EvidenceEntry,
    MalformedEntry,
    SignatureEntry,
    parse_entry,
    signature_entry,
)
from charter.ledger.engine.errors import (
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
    TxStatus,
)
from charter.ledger.engine.outcomes import EntryKind as LeafKind
from charter.ledger.engine.tx import (
    EMPTY_WRITE_SET_DIGEST,
    ZERO_DIGEST,
    Transaction,
    Write,
    write_set_digest,
)
from charter.ledger.errors import LedgerError
from charter.ledger.issue import issue_cose_receipt, issue_json_receipt
from charter.ledger.merkle import GENESIS_LEAF, HASH_SIZE, MerkleTree, commit_evidence, leaf_hash
from charter.ledger.receipts import LeafComponents
from charter.ledger.signatures import (
    SignaturePolicy,
    SignatureSchedule,
    SignedRoot,
    check_signer,
    sign_signed_root,
    verify_signed_root,
)
from charter.ledger.snapshots import SnapshotEvidence, SnapshotPolicy, SnapshotSchedule
from charter.ledger.trust import TrustedNodes

SIGNATURES_TABLE = "charter.signatures"
SNAPSHOTS_TABLE = "charter.snapshots"
LATEST = "latest"
SNAPSHOT_LABEL = Symbol("charter-engine-snapshot")
SNAPSHOT_VERSION = 1
DEFAULT_REPLAY_WINDOW = 60_000_000
"""In batch numbers, which nodes take from their microsecond clocks: a minute. A batch
that reaches the log this far behind a later one of its submitter is Invalid; retries
after a leader change, with the forwarding timeouts, stay well within it."""
_PRUNE_FROM = 4096
_MADE_KEPT = 64
_CE_CONTEXT = b"charter-ce"
_U64 = struct.Struct(">Q")


def parse_tx_id(tx_id: str) -> tuple[int, int] | None:
    """(view, seqno) of ``"{view}.{seqno}"``, or None if it is not one."""
    view, dot, seqno = tx_id.partition(".")
    if not (dot and view.isascii() and view.isdigit() and seqno.isascii() and seqno.isdigit()):
        return None
    parsed = int(view), int(seqno)
    return parsed if f"{parsed[0]}.{parsed[1]}" == tx_id else None


class _Replays:
    """Per submitter: the highest batch-seq seen and the ones seen within the window."""

    __slots__ = ("_prune_at", "seen", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.seen: dict[str, tuple[int, set[int]]] = {}
        self._prune_at: dict[str, int] = {}
        """Set sizes at which to forget numbers below the window (amortized; what is
        forgotten would be refused as expired anyway, so outcomes do not depend on it)."""

    def check_and_record(self, submitter: str, seq: int) -> str | None:
        high, seen = self.seen.get(submitter, (-1, set()))
        if seq in seen or seq <= high - self.window:
            return f"replayed or expired batch {seq} of {submitter}"
        seen.add(seq)
        if seq > high:
            high = seq
            if len(seen) > self._prune_at.get(submitter, _PRUNE_FROM):
                seen = {s for s in seen if s > high - self.window}
                self._prune_at[submitter] = max(_PRUNE_FROM, 2 * len(seen))
        self.seen[submitter] = (high, seen)
        return None

    def to_syrup(self) -> dict[str, list[Any]]:
        return {
            who: [high, sorted(s for s in seen if s > high - self.window)]
            for who, (high, seen) in self.seen.items()
        }

    def load(self, value: object) -> None:
        if not isinstance(value, dict):
            raise EngineSnapshotError("replay state is a dictionary")
        for who, item in value.items():
            if (
                type(who) is not str
                or not isinstance(item, list)
                or len(item) != 2
                or type(item[0]) is not int
                or not isinstance(item[1], list)
                or not all(type(s) is int for s in item[1])
            ):
                raise EngineSnapshotError("a replay record is [high, [seq ...]]")
            self.seen[who] = (item[0], set(item[1]))


class Engine:
    """The deterministic state machine every node runs over the committed log.

    ``node_keys`` are the Ed25519 keys batches are signed with, by node id;
    ``trusted`` the P-256 ledger certificates signature transactions must come from;
    ``network_secret`` derives commit evidence (every node of the network holds it).
    ``node_members`` names the member owning each genesis node; ``handlers`` are the
    command handlers by app name (``commands``), the same on every node.
    After genesis, the ``charter.nodes`` table (``nodes``) overrides both key maps.
    """

    def __init__(
        self,
        *,
        network_secret: bytes,
        node_keys: Mapping[str, Ed25519PublicKey],
        trusted: TrustedNodes,
        signature_policy: SignaturePolicy | None = None,
        snapshot_policy: SnapshotPolicy | None = None,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
        node_members: Mapping[str, str] | None = None,
        handlers: Mapping[str, CommandHandler] | None = None,
    ) -> None:
        if len(network_secret) < 16:
            raise ValueError("the network secret is at least 16 bytes")
        if replay_window < 1:
            raise ValueError("the replay window is positive")
        self._secret = bytes(network_secret)
        # Keyed once: each nonce copies the keyed state rather than re-deriving the pads.
        self._ce_mac = hmac.new(self._secret, _CE_CONTEXT, "sha256")
        self._genesis_keys = dict(node_keys)
        self._genesis_members = dict(node_members or {})
        self._genesis_trusted = trusted
        self._handlers = dict(handlers or {})
        self._checked_tables: dict[str, set[str]] = {}
        """Per app, the tables its handler wrote that were found within its prefixes."""
        self._directory_writers = frozenset(
            app
            for app, h in self._handlers.items()
            if any(NODES_TABLE.startswith(prefix) for prefix in h.tables)
        )
        """Apps whose handlers may write the node directory (only they can change it)."""
        self._signature_policy = signature_policy or SignaturePolicy()
        self._snapshot_policy = snapshot_policy or SnapshotPolicy()
        self._replay_window = replay_window
        self.alarms: list[DivergenceAlarm] = []
        self._reset(MerkleTree([GENESIS_LEAF]), last_index=0, signed_upto=1)

    def _reset(
        self, tree: MerkleTree, *, last_index: int, signed_upto: int, kv: KVStore | None = None
    ) -> None:
        self.tree = tree
        self.kv = KVStore() if kv is None else kv
        rows = self.kv.row_count()
        self._directory: dict[str, DirectoryEntry] = {}
        self._node_keys = dict(self._genesis_keys)
        self._trusted = self._genesis_trusted
        self._last_index = last_index
        self._leaf_base = tree.size  # first seqno whose leaf components are held
        self._ws_digests = bytearray()
        self._claims: dict[int, bytes] = {}
        self._invalid: dict[int, str] = {}
        self._view_starts: list[int] = []
        self._view_values: list[int] = []
        self._signed_upto = signed_upto  # seqnos below this are covered by a signature
        self._signatures: list[SignedRoot] = []  # matched, ordered by tree size
        self._replays = _Replays(self._replay_window)
        self._halted = False
        self._taken: tuple[bytes, int] | None = None  # the last snapshot and its tree size
        self._made: dict[bytes, None] = {}
        """Signature entries this engine made (oldest first, bounded): applying one checks
        its signer but not its two signatures, which this node computed itself."""
        self.alarms = []
        self.schedule = SignatureSchedule(self._signature_policy, last_signed_seqno=tree.size - 1)
        self._sched_last = tree.size - 1
        self._sched_signed = tree.size - 1
        self.snapshots = SnapshotSchedule(
            self._snapshot_policy, last_snapshot_seqno=tree.size - 1, last_rows=rows
        )

    # -- queries ------------------------------------------------------------------------

    @property
    def halted(self) -> bool:
        return self._halted

    @property
    def applied_index(self) -> int:
        """The Raft index of the last entry applied."""
        return self._last_index

    @property
    def last_seqno(self) -> int:
        return self.tree.size - 1

    @property
    def signed_upto(self) -> int:
        """Every seqno below this is covered by a matched signature."""
        return self._signed_upto

    def root(self) -> bytes:
        return self.tree.root()

    def state_digest(self) -> bytes:
        return self.kv.digest()

    def node(self, name: str) -> NodeRecord | None:
        """A node that may submit batches now (genesis or trusted by governance)."""
        entry = self._directory.get(name)
        if entry is not None:
            if entry.status is not NodeStatus.TRUSTED:
                return None
            return NodeRecord(name, entry.member)
        if name in self._genesis_keys:
            return NodeRecord(name, self._genesis_members.get(name, ""))
        return None

    def directory(self) -> dict[str, DirectoryEntry]:
        """The nodes governance wrote into ``charter.nodes``, by name."""
        return dict(self._directory)

    @property
    def trusted(self) -> TrustedNodes:
        """The ledger certificates signature transactions are accepted from now."""
        return self._trusted

    def _reload_directory(self) -> None:
        directory = {
            name: DirectoryEntry.decode(name, data) for name, data in self.kv.items(NODES_TABLE)
        }
        self._directory = directory
        keys = {n: k for n, k in self._genesis_keys.items() if n not in directory}
        certs = {c.node_id: c for c in self._genesis_trusted}
        for entry in directory.values():
            if entry.status is NodeStatus.TRUSTED:
                keys[entry.name] = entry.batch_key
                certs[entry.ledger_cert.node_id] = entry.ledger_cert
            elif entry.ledger_cert.node_id in certs:
                del certs[entry.ledger_cert.node_id]
        self._node_keys = keys
        self._trusted = TrustedNodes(certs.values())

    def get(self, table: str, key: str) -> bytes | None:
        """The applied state (every committed Raft entry applied so far)."""
        return self.kv.get(table, key)

    def get_committed(self, table: str, key: str) -> bytes | None:
        """The state as of the last seqno a matched signature covers."""
        return self.kv.get_committed(table, key)

    def items(self, table: str) -> Iterator[tuple[str, bytes]]:
        return self.kv.items(table)

    def view_of(self, seqno: int) -> int | None:
        if not 1 <= seqno < self.tree.size:
            return None
        i = bisect.bisect_right(self._view_starts, seqno) - 1
        return self._view_values[i] if i >= 0 else None

    def tx_id(self, seqno: int) -> str | None:
        view = self.view_of(seqno)
        return None if view is None else f"{view}.{seqno}"

    def status(self, tx_id: str) -> TxStatus:
        parsed = parse_tx_id(tx_id)
        if parsed is None:
            return TxStatus.UNKNOWN
        return self.status_at(*parsed)

    def status_at(self, view: int, seqno: int) -> TxStatus:
        """``status`` of transaction ``view.seqno``, for callers holding the numbers."""
        if self.view_of(seqno) != view:
            return TxStatus.UNKNOWN
        if seqno in self._invalid:
            return TxStatus.INVALID
        if seqno < self._signed_upto:
            return TxStatus.COMMITTED
        return TxStatus.PENDING

    def invalid_reason(self, tx_id: str) -> str | None:
        parsed = parse_tx_id(tx_id)
        if parsed is None or self.view_of(parsed[1]) != parsed[0]:
            return None
        return self._invalid.get(parsed[1])

    # -- applying -----------------------------------------------------------------------

    def apply(self, entries: Sequence[Entry]) -> ApplyResult:
        """Apply committed entries, which must follow the last applied index without gaps."""
        if self._halted:
            raise EngineHaltedError("the engine halted on a divergence alarm")
        for offset, entry in enumerate(entries, start=self._last_index + 1):
            if entry.index != offset:
                raise EngineOrderError(
                    f"entry {entry.index} where {offset} follows applied index {self._last_index}"
                )
        result = ApplyResult(applied_index=self._last_index)
        before = self._signed_upto
        for entry in entries:
            self._last_index = entry.index
            result.applied_index = entry.index
            if entry.kind is EntryKind.NORMAL and entry.data:
                self._apply_data(entry.term, entry.data, result)
                if self._halted:
                    result.halted = True
                    break
        last = self.tree.size - 1
        if last > self._sched_last:
            self.schedule.appended(last)
            self._sched_last = last
        result.signature_due = self.schedule.due
        result.snapshot_due = self.snapshots.committed(last) is not None
        if self._signed_upto > before:
            invalid = self._invalid
            result.committed = [
                f"{self.view_of(s)}.{s}"
                for s in range(before, self._signed_upto)
                if s not in invalid
            ]
        return result

    def _apply_data(self, view: int, data: bytes, result: ApplyResult) -> None:
        parsed = parse_entry(data)
        if isinstance(parsed, BatchEntry):
            self._apply_batch(view, parsed, result)
        elif isinstance(parsed, SignatureEntry):
            own = data in self._made
            if own:
                del self._made[data]
            self._apply_signature(view, parsed.signed, result, own=own)
        elif isinstance(parsed, EvidenceEntry):
            self._apply_evidence(view, parsed, result)
        else:
            assert isinstance(parsed, MalformedEntry)
            self._invalid_leaf(view, LeafKind.MALFORMED, parsed.reason, result)

    def _apply_batch(self, view: int, batch: BatchEntry, result: ApplyResult) -> None:
        reason: str | None = None
        key = self._node_keys.get(batch.submitter)
        if key is None:
            reason = f"unknown submitter {batch.submitter[:64]!r}"
        else:
            try:
                key.verify(batch.signature, batch.body)
            except SignatureError:
                reason = "the batch signature does not verify"
        if reason is None:
            reason = self._replays.check_and_record(batch.submitter, batch.batch_seq)
        who, seq = batch.submitter, batch.batch_seq
        submitter = self.node(who) if reason is None else None
        member = submitter.member if submitter is not None else ""
        for raw in batch.txs:
            if reason is not None:
                self._invalid_leaf(view, LeafKind.TX, reason, result, who, seq)
                continue
            if isinstance(raw, Record) and raw.label == CMD_LABEL:
                if self._apply_command(view, raw, result, who, member, seq):
                    # the command changed the node directory: the rest of the batch runs
                    # with the submitter's member as it is now
                    submitter = self.node(who)
                    member = submitter.member if submitter is not None else ""
                continue
            try:
                tx, ws_digest = Transaction.parse(raw)
            except TransactionError as exc:
                self._invalid_leaf(view, LeafKind.TX, exc.message, result, who, seq)
                continue
            seqno = self._add_leaf(view, ws_digest, tx.claims_digest)
            self.kv.apply(seqno, tx.writes)
            result.applied.append(
                AppliedTx(
                    f"{view}.{seqno}",
                    seqno,
                    LeafKind.TX,
                    TxStatus.PENDING,
                    None,
                    who,
                    seq,
                    tx.client_ref,
                )
            )

    def _apply_command(
        self, view: int, raw: Record, result: ApplyResult, who: str, member: str, seq: int
    ) -> bool:
        """Apply one command of ``who``'s batch; True if it changed the node directory."""
        try:
            cmd = Command.from_record(raw)
        except TransactionError as exc:
            self._invalid_leaf(view, LeafKind.TX, exc.message, result, who, seq)
            return False
        handler = self._handlers.get(cmd.app)
        if handler is None:
            reason = f"engine.app: no command handler {cmd.app[:64]!r}"
            self._invalid_leaf(view, LeafKind.TX, reason, result, who, seq, cmd)
            return False
        seqno = self.tree.size
        tx_id = f"{view}.{seqno}"
        ctx = CommandContext(cmd.app, who, member, view, seqno, tx_id, seq, self.kv, self.node)
        try:
            checked = self._checked_tables.setdefault(cmd.app, set())
            writes = check_writes(cmd.app, handler.tables, handler.execute(ctx, cmd.body), checked)
        except CommandRefused as exc:
            self._invalid_leaf(view, LeafKind.TX, exc.reason, result, who, seq, cmd)
            return False
        except TransactionError as exc:
            reason = f"engine.write: {exc.message}"
            self._invalid_leaf(view, LeafKind.TX, reason, result, who, seq, cmd)
            return False
        made = tuple(writes)
        seqno = self._add_leaf(view, write_set_digest(made), cmd.claims_digest())
        self.kv.apply(seqno, made)
        reloaded = cmd.app in self._directory_writers and any(w.table == NODES_TABLE for w in made)
        if reloaded:
            self._reload_directory()
        result.applied.append(
            AppliedTx(
                tx_id,
                seqno,
                LeafKind.TX,
                TxStatus.PENDING,
                None,
                who,
                seq,
                cmd.client_ref,
                cmd,
                made,
            )
        )
        return reloaded

    def _apply_signature(
        self, view: int, signed: SignedRoot, result: ApplyResult, *, own: bool = False
    ) -> None:
        kind = LeafKind.SIGNATURE
        seqno = self.tree.size
        try:
            if own:
                check_signer(signed, self._trusted)
            else:
                verify_signed_root(signed, self._trusted)
        except LedgerError as exc:
            self._invalid_leaf(view, kind, f"signature: {exc.message}", result)
            return
        size = signed.tree_size
        if signed.view > view:
            reason = f"signature of view {signed.view} in an entry of view {view}"
            self._invalid_leaf(view, kind, reason, result)
            return
        if size > seqno:
            reason = f"signature over {size} leaves lands at seqno {seqno}"
            self._invalid_leaf(view, kind, reason, result)
            return
        if size >= max(1, self.tree.min_index):
            computed = self.tree.root_at(size)
            if computed != signed.root:
                leaf = self._invalid_leaf(view, kind, "divergent signed root", result)
                alarm = DivergenceAlarm(leaf.tx_id, leaf.seqno, signed, computed)
                self.alarms.append(alarm)
                result.alarms.append(alarm)
                self._halted = True
                return
        # else: a signature over a prefix older than this engine's snapshot; its
        # signatures verified but the root cannot be recomputed here (see docs).
        tx = Transaction.of([Write(SIGNATURES_TABLE, LATEST, signed.encode())], reserved_ok=True)
        self._apply_own(view, kind, tx, result)
        if size > self._signed_upto:
            self._signed_upto = size
            self.kv.settle(size)
        bisect.insort(self._signatures, signed, key=lambda s: s.tree_size)
        if size >= self._sched_signed:
            self.schedule.signed(size)
            self._sched_signed = size
            self._sched_last = max(self._sched_last, size)

    def _apply_evidence(self, view: int, entry: EvidenceEntry, result: ApplyResult) -> None:
        kind = LeafKind.SNAPSHOT_EVIDENCE
        evidence = entry.evidence
        size = evidence.seqno + 1
        if size > self.tree.size:
            self._invalid_leaf(view, kind, f"evidence for seqno {evidence.seqno} is ahead", result)
            return
        checkable = size >= max(1, self.tree.min_index)
        if checkable and evidence.resume_tree().root() != self.tree.root_at(size):
            reason = "snapshot evidence frontier does not match the tree"
            self._invalid_leaf(view, kind, reason, result)
            return
        tx = Transaction.of([Write(SNAPSHOTS_TABLE, LATEST, entry.data)], reserved_ok=True)
        self._apply_own(view, kind, tx, result)

    def _apply_own(self, view: int, kind: LeafKind, tx: Transaction, result: ApplyResult) -> None:
        seqno = self._add_leaf(view, tx.write_set_digest(), ZERO_DIGEST)
        self.kv.apply(seqno, tx.writes)
        result.applied.append(AppliedTx(f"{view}.{seqno}", seqno, kind, TxStatus.PENDING))

    def _invalid_leaf(
        self,
        view: int,
        kind: LeafKind,
        reason: str,
        result: ApplyResult,
        submitter: str | None = None,
        batch_seq: int | None = None,
        command: Command | None = None,
    ) -> AppliedTx:
        seqno = self._add_leaf(view, EMPTY_WRITE_SET_DIGEST, ZERO_DIGEST)
        self._invalid[seqno] = reason
        applied = AppliedTx(
            f"{view}.{seqno}",
            seqno,
            kind,
            TxStatus.INVALID,
            reason,
            submitter,
            batch_seq,
            command.client_ref if command is not None else "",
            command,
        )
        result.applied.append(applied)
        return applied

    def _nonce(self, seqno: int) -> bytes:
        mac = self._ce_mac.copy()
        mac.update(_U64.pack(seqno))
        return mac.digest()

    def _add_leaf(self, view: int, ws_digest: bytes, claims: bytes) -> int:
        seqno = self.tree.size
        if not self._view_values or self._view_values[-1] != view:
            if self._view_values and view < self._view_values[-1]:
                raise EngineOrderError(f"view {view} after view {self._view_values[-1]}")
            self._view_starts.append(seqno)
            self._view_values.append(view)
        ce = commit_evidence(view, seqno, self._nonce(seqno))
        self.tree.append(leaf_hash(ws_digest, ce, claims))
        self._ws_digests += ws_digest
        if claims != ZERO_DIGEST:
            self._claims[seqno] = claims
        return seqno

    # -- signatures and receipts --------------------------------------------------------

    def make_signature(
        self, view: int, ledger_key: P256PrivateKey, cert: Certificate, now_ms: int
    ) -> bytes:
        """The leader's signature entry over every leaf applied so far.

        It claims the next seqno; if other entries land before it, it still covers the
        prefix it signed (a later signature covers the rest).
        """
        if self._halted:
            raise EngineHaltedError("the engine halted on a divergence alarm")
        seqno = self.tree.size
        signed = sign_signed_root(
            ledger_key, cert, view=view, seqno=seqno, root=self.tree.root(), iat=now_ms // 1000
        )
        if seqno >= self._sched_signed:
            self.schedule.signed(seqno)
            self._sched_signed = seqno
            self._sched_last = max(self._sched_last, seqno)
        entry = signature_entry(signed)
        made = self._made
        made[entry] = None
        if len(made) > _MADE_KEPT:
            del made[next(iter(made))]
        return entry

    def signature_due(self, elapsed_ms: int = 0) -> bool:
        """Feed elapsed time to the leader's signature schedule; True when one is due."""
        return self.schedule.elapsed(elapsed_ms)

    def leaf_components(self, seqno: int) -> LeafComponents:
        view = self.view_of(seqno)
        if view is None or seqno < self._leaf_base:
            raise ReceiptUnavailableError(f"seqno {seqno} is not held by this engine")
        at = (seqno - self._leaf_base) * HASH_SIZE
        return LeafComponents(
            bytes(self._ws_digests[at : at + HASH_SIZE]),
            commit_evidence(view, seqno, self._nonce(seqno)),
            self._claims.get(seqno, ZERO_DIGEST),
        )

    def covering_signature(self, seqno: int) -> SignedRoot | None:
        """The smallest matched signature whose tree holds ``seqno``."""
        i = bisect.bisect_right([s.tree_size for s in self._signatures], seqno)
        return self._signatures[i] if i < len(self._signatures) else None

    def receipt(self, tx_id: str, fmt: Literal["json", "cose"] = "json") -> bytes:
        """A receipt for a Committed transaction, as JSON text bytes or a COSE_Sign1."""
        status = self.status(tx_id)
        if status is not TxStatus.COMMITTED:
            raise ReceiptUnavailableError(f"transaction {tx_id} is {status.value}")
        parsed = parse_tx_id(tx_id)
        assert parsed is not None
        seqno = parsed[1]
        signed = self.covering_signature(seqno)
        if signed is None or seqno < self.tree.min_index:
            raise ReceiptUnavailableError(f"transaction {tx_id} precedes this engine's snapshot")
        components = self.leaf_components(seqno)
        if fmt == "json":
            return issue_json_receipt(self.tree, seqno, components, signed).dumps().encode()
        if fmt == "cose":
            return issue_cose_receipt(self.tree, seqno, components, signed)
        raise ValueError(f"unknown receipt format {fmt!r}")

    def forget_before(self, seqno: int) -> None:
        """Drop the leaves and leaf components below ``seqno`` (already committed).

        Memory then grows only with the uncompacted tail; receipts for the forgotten
        transactions can no longer be issued here (an archive node keeps them).
        """
        if seqno > self._signed_upto:
            raise EngineOrderError(f"seqno {seqno} is not yet covered by a signature")
        if seqno <= self._leaf_base:
            return
        self.tree.flush(seqno)
        del self._ws_digests[: (seqno - self._leaf_base) * HASH_SIZE]
        self._claims = {s: c for s, c in self._claims.items() if s >= seqno}
        self._leaf_base = seqno
        keep = bisect.bisect_right([s.tree_size for s in self._signatures], seqno)
        del self._signatures[:keep]

    # -- snapshots ----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The canonical Syrup of the state as of ``last_seqno``: tables, tree, counters."""
        if self._halted:
            raise EngineHaltedError("a halted engine's state is evidence, not a snapshot")
        views = [[s, v] for s, v in zip(self._view_starts, self._view_values, strict=True)]
        invalid = [[s, r] for s, r in sorted(self._invalid.items())]
        data = encode(
            Record(
                SNAPSHOT_LABEL,
                SNAPSHOT_VERSION,
                self._last_index,
                self.tree.size,
                self.tree.frontier(),
                self._signed_upto,
                views,
                invalid,
                self._replays.to_syrup(),
                self.kv.to_syrup(),
            )
        )
        self._taken = (data, self.tree.size)
        return data

    def snapshot_evidence(self, data: bytes) -> bytes:
        """The entry recording ``data`` (just taken by ``snapshot``) for the next signature."""
        if self._taken is not None and self._taken[0] is data:
            size = self._taken[1]  # our own: no need to decode megabytes for one integer
        else:
            size = _decode_snapshot(data)[1]
        self._taken = None
        if size != self.tree.size:
            raise EngineOrderError("the snapshot is not of the engine's current state")
        rows = self.kv.row_count()  # the snapshot is of the current state: its rows
        seqno = self.tree.size - 1
        evidence = SnapshotEvidence.for_snapshot(seqno, data, self.tree)
        if seqno > self.snapshots.last_snapshot:
            self.snapshots.taken(seqno, rows)
        return evidence.encode()

    def restore(self, data: bytes) -> None:
        """Replace this engine's state with a snapshot's; then feed it the entries after it."""
        fields = _decode_snapshot(data)
        (
            last_index,
            size,
            frontier,
            signed_upto,
            views,
            invalid,
            replays,
            state,
        ) = fields
        if type(last_index) is not int or last_index < 0:
            raise EngineSnapshotError("the applied index is a non-negative integer")
        if type(size) is not int or size < 1:
            raise EngineSnapshotError("the tree size is a positive integer")
        if not isinstance(frontier, list) or not all(type(h) is bytes for h in frontier):
            raise EngineSnapshotError("the frontier is a list of hashes")
        if type(signed_upto) is not int or not 1 <= signed_upto <= size:
            raise EngineSnapshotError("the signed prefix lies within the tree")
        try:
            tree = MerkleTree.from_frontier(size, frontier)
        except LedgerError as exc:
            raise EngineSnapshotError(exc.message) from None
        kv = KVStore.from_syrup(state)
        replay_state = _Replays(self._replay_window)
        replay_state.load(replays)
        starts, values = _view_runs(views, size)
        if not isinstance(invalid, list):
            raise EngineSnapshotError("invalid transactions are a list")
        reasons: dict[int, str] = {}
        for item in invalid:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and type(item[0]) is int
                and 1 <= item[0] < size
                and type(item[1]) is str
            ):
                raise EngineSnapshotError("an invalid transaction is [seqno, reason]")
            reasons[item[0]] = item[1]
        # Everything checked: only now replace this engine's state.
        self._reset(tree, last_index=last_index, signed_upto=signed_upto, kv=kv)
        self._replays = replay_state
        self._view_starts, self._view_values = starts, values
        self._invalid = reasons
        self._reload_directory()


def _view_runs(views: object, size: int) -> tuple[list[int], list[int]]:
    """The [first-seqno, view] runs of a snapshot, both strictly increasing, within the tree."""
    if not isinstance(views, list):
        raise EngineSnapshotError("view runs are a list")
    starts: list[int] = []
    values: list[int] = []
    for item in views:
        if not (isinstance(item, list) and len(item) == 2 and all(type(x) is int for x in item)):
            raise EngineSnapshotError("a view run is [first-seqno, view]")
        start, view = item
        if not 1 <= start < size or (starts and (start <= starts[-1] or view <= values[-1])):
            raise EngineSnapshotError("view runs increase within the tree")
        starts.append(start)
        values.append(view)
    return starts, values


def _decode_snapshot(data: bytes) -> tuple[Any, ...]:
    try:
        record = decode(data)
    except SyrupError as exc:
        raise EngineSnapshotError(f"a snapshot is canonical Syrup: {exc.message}") from None
    if not isinstance(record, Record) or record.label != SNAPSHOT_LABEL or len(record.fields) != 9:
        raise EngineSnapshotError("not a charter-engine-snapshot record")
    if record.fields[0] != SNAPSHOT_VERSION:
        raise EngineSnapshotError(f"unsupported snapshot version {record.fields[0]!r}")
    return record.fields[1:]


__all__ = ["Engine", "parse_tx_id"]
