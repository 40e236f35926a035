"""The newest transactions this node applied, kept for the explorer's ledger view.

The engine keeps each transaction's leaf and status, not what the transaction was. The
recorder listens to every apply result (``LedgerService.add_listener``) and keeps the
newest ones in a ring: the engine's own ``AppliedTx`` records, the signed root of each
signature transaction (what it covers) and the token history rows tokens commands
wrote. The listener only appends references, so the apply path pays a few list
operations per transaction; decoding and describing happen when the explorer asks.

Only what this process applied is kept: after a restart the ring refills as the node
replays its log from its last snapshot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from charter.api.tokens import transfer_doc
from charter.errors import CharterError
from charter.ledger.engine import TxStatus
from charter.ledger.engine.commands import Command
from charter.ledger.engine.engine import LATEST, SIGNATURES_TABLE, Engine
from charter.ledger.engine.outcomes import AppliedTx, ApplyResult, EntryKind
from charter.ledger.signatures import SignedRoot
from charter.tokens.model import APP as TOKENS_APP
from charter.tokens.model import T_TRANSFERS, TransferRecord
from charter.ui.describe import KINDS, describe_command, kind_of_app

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_TRANSFERS",
    "KINDS",
    "MAX_KEPT_BODY",
    "LedgerRecorder",
    "RecordedTx",
]

DEFAULT_CAPACITY: Final = 2000
DEFAULT_TRANSFERS: Final = 500
MAX_KEPT_BODY: Final = 16 * 1024
"""Command bodies above this are not kept (the ring's memory stays small whatever is sent)."""


class RecordedTx(NamedTuple):
    applied_us: int
    tx: AppliedTx
    signed_root: bytes | None
    """For a signature transaction: the signed root it carried (Syrup bytes)."""
    dropped_body: int = 0
    """The size of a command body too large to keep (0: the body is kept)."""


class LedgerRecorder:
    """An apply listener holding the newest transactions and token history rows."""

    def __init__(
        self,
        engine: Engine,
        *,
        capacity: int = DEFAULT_CAPACITY,
        transfers: int = DEFAULT_TRANSFERS,
        signers: Mapping[str, str] | None = None,
    ) -> None:
        """``signers`` names the genesis nodes by ledger node id (governance's directory
        names the others)."""
        if capacity < 1 or transfers < 1:
            raise ValueError("the recorder keeps at least one of each")
        self.engine = engine
        self._txs: deque[RecordedTx] = deque(maxlen=capacity)
        self._transfers: deque[tuple[str, bytes]] = deque(maxlen=transfers)
        self._older_transfers: list[tuple[str, bytes]] | None = None
        self._details: dict[int, dict[str, Any]] = {}
        self._signers = dict(signers or {})

    @property
    def capacity(self) -> int:
        assert self._txs.maxlen is not None
        return self._txs.maxlen

    def __call__(self, result: ApplyResult) -> None:
        now = time.time_ns() // 1000
        txs = self._txs
        transfers = self._transfers
        for tx in result.applied:
            signed: bytes | None = None
            cmd = tx.command
            if cmd is None:
                if tx.kind is EntryKind.SIGNATURE and tx.status is not TxStatus.INVALID:
                    signed = self.engine.get(SIGNATURES_TABLE, LATEST)
            else:
                written = 0
                tokens = cmd.app == TOKENS_APP
                for table, key, value in tx.writes:
                    if value is not None:
                        written += len(value)
                        if tokens and table == T_TRANSFERS:
                            transfers.append((key, value))
                if len(cmd.body) > MAX_KEPT_BODY:
                    size = len(cmd.body)
                    lean = Command(cmd.app, b"", cmd.client_ref)
                    txs.append(RecordedTx(now, tx._replace(command=lean, writes=()), None, size))
                    continue
                if written > MAX_KEPT_BODY:
                    # a governance command writes its whole request again: not kept
                    # twice (short rows cost less kept than copied away)
                    tx = tx._replace(writes=())
            txs.append(RecordedTx(now, tx, signed))

    # -- queries ------------------------------------------------------------------------

    def transactions(
        self, *, limit: int, before: int | None = None, kinds: frozenset[str] | None = None
    ) -> dict[str, Any]:
        """The newest transactions first, each with its current status."""
        engine = self.engine
        members = _Members(engine)
        items: list[dict[str, Any]] = []
        covered_from = self._signature_floors()
        oldest: int | None = None
        for rec in reversed(self._txs):
            tx = rec.tx
            oldest = tx.seqno
            if before is not None and tx.seqno >= before:
                continue
            kind, detail = self._describe(rec)
            if kinds is not None and kind not in kinds:
                continue
            items.append(self._row(rec, kind, detail, members, covered_from))
            if len(items) >= limit:
                break
        self._prune_details()
        return {
            "items": items,
            "last_seqno": engine.last_seqno,
            "signed_upto": engine.signed_upto,
            "oldest_held": self._txs[0].tx.seqno if self._txs else None,
            "capacity": self.capacity,
            "scanned_to": oldest,
        }

    def _row(
        self,
        rec: RecordedTx,
        kind: str,
        detail: dict[str, Any],
        members: _Members,
        covered_from: dict[int, int | None],
    ) -> dict[str, Any]:
        tx = rec.tx
        status = self.engine.status(tx.tx_id)
        row: dict[str, Any] = {
            "tx_id": tx.tx_id,
            "seqno": tx.seqno,
            "kind": kind,
            "status": status.value,
            "reason": self.engine.invalid_reason(tx.tx_id) if status is TxStatus.INVALID else None,
            "submitter": tx.submitter,
            "member": members.of(tx.submitter),
            "batch_us": tx.batch_seq,
            "applied_us": rec.applied_us,
            "client_ref": tx.client_ref or None,
            "receipt": f"/api/v1/tx/{tx.tx_id}/receipt" if status is TxStatus.COMMITTED else None,
            **detail,
        }
        if kind == "signature" and "covers" in detail:
            row["covers"] = {**detail["covers"], "from": covered_from.get(tx.seqno)}
            row["submitter"] = members.signer(detail["covers"]["signer"], self._signers)
            row["member"] = members.of(row["submitter"])
        return row

    def _describe(self, rec: RecordedTx) -> tuple[str, dict[str, Any]]:
        tx = rec.tx
        cached = self._details.get(tx.seqno)
        if cached is not None:
            return cached["kind"], cached["detail"]
        kind, detail = _describe(rec)
        self._details[tx.seqno] = {"kind": kind, "detail": detail}
        return kind, detail

    def _signature_floors(self) -> dict[int, int | None]:
        """For each held signature: the first seqno it newly covers (the previous one's end)."""
        out: dict[int, int | None] = {}
        # leaf 0 is the genesis leaf: a ring holding seqno 1 knows where signing began
        previous: int | None = 1 if self._txs and self._txs[0].tx.seqno == 1 else None
        for rec in self._txs:
            if rec.signed_root is None:
                continue
            _, detail = self._describe(rec)
            covers = detail.get("covers")
            if covers is None:
                continue
            out[rec.tx.seqno] = previous
            size = int(covers["upto"])
            previous = size if previous is None else max(previous, size)
        return out

    def _prune_details(self) -> None:
        if len(self._details) <= 2 * self.capacity:
            return
        floor = self._txs[0].tx.seqno if self._txs else 0
        self._details = {s: d for s, d in self._details.items() if s >= floor}

    def token_transfers(self, *, limit: int) -> list[dict[str, Any]]:
        """The newest token history rows first (mints, burns, transfers)."""
        rows = list(self._transfers)
        if len(rows) < limit:
            older = self._older(rows[0][0] if rows else None)
            rows = older[-(limit - len(rows)) :] + rows if older else rows
        out: list[dict[str, Any]] = []
        for key, raw in reversed(rows[-limit:]):
            try:
                out.append(transfer_doc(TransferRecord.decode(key, raw)))
            except (CharterError, ValueError):
                continue
        return out

    def _older(self, first_key: str | None) -> list[tuple[str, bytes]]:
        """Token history applied before this recorder started, read once and kept."""
        if self._older_transfers is None:
            keep = self._transfers.maxlen or DEFAULT_TRANSFERS
            older: deque[tuple[str, bytes]] = deque(maxlen=keep)
            for key, raw in self.engine.items(T_TRANSFERS):
                if first_key is not None and key >= first_key:
                    break
                older.append((key, raw))
            self._older_transfers = list(older)
        return self._older_transfers


def _describe(rec: RecordedTx) -> tuple[str, dict[str, Any]]:
    tx = rec.tx
    if tx.kind is EntryKind.SIGNATURE:
        detail: dict[str, Any] = {"summary": "signature"}
        if rec.signed_root is not None:
            try:
                signed = SignedRoot.decode(rec.signed_root)
            except CharterError:
                return "signature", detail
            detail["covers"] = {"upto": signed.tree_size, "signer": signed.node_id}
            detail["summary"] = f"signs seqnos below {signed.tree_size}"
        return "signature", detail
    if tx.kind is EntryKind.SNAPSHOT_EVIDENCE:
        return "snapshot", {"summary": "snapshot evidence"}
    if tx.kind is EntryKind.MALFORMED:
        return "malformed", {"summary": "malformed entry"}
    if tx.command is None:
        return "write", {"summary": "table write" if tx.status is not TxStatus.INVALID else ""}
    if rec.dropped_body:
        kind = kind_of_app(tx.command.app)
        return kind, {
            "op": None,
            "summary": f"{tx.command.app} command of {rec.dropped_body} bytes",
        }
    return describe_command(tx.command)


class _Members:
    """Who owns each submitting node, looked up once per node and query."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: dict[str, str | None] = {}
        self._signer_names: dict[str, str] | None = None

    def of(self, node: str | None) -> str | None:
        if not node:
            return None
        if node not in self._known:
            record = self._engine.node(node)
            entry = self._engine.directory().get(node) if record is None else None
            self._known[node] = (
                record.member if record is not None else entry.member if entry else None
            )
        return self._known[node]

    def signer(self, node_id: str, genesis: Mapping[str, str]) -> str | None:
        """The name of the node whose ledger key signed a root."""
        if self._signer_names is None:
            self._signer_names = dict(genesis)
            for name, entry in self._engine.directory().items():
                self._signer_names[entry.ledger_cert.node_id] = name
        return self._signer_names.get(node_id)
