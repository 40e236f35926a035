"""Re-verify governance from genesis: every signature, every decision, the final state.

Every governance command that applied is kept, with its exact signed bytes, in
``charter.gov.log`` (``handler.LoggedCommand``), so the history survives log
compaction and travels in snapshots. ``audit`` replays those commands in log order
through a fresh ``GovernanceHandler`` over an empty state, exactly as the nodes ran
them, and reports:

- a record that no longer parses, whose signature no longer verifies, or that the
  rules now refuse (the ledger applied it, so its bytes or the rules were changed);
- a first record that is not the bootstrap, or a genesis that differs from the one
  the auditor derives from its own network file;
- every row of the ``charter.gov.*`` tables whose replayed value differs from the
  audited node's (a decision, member or node the signed history does not explain).

The input is any ``StateView`` holding the governance tables: a node's engine, or the
tables a node exports over REST (``GET /api/v1/gov/export``; ``charter gov audit``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from charter.codec.syrup import Record, decode
from charter.governance import state
from charter.governance.errors import GovernanceError
from charter.governance.handler import BOOTSTRAP, GovernanceHandler, LoggedCommand
from charter.governance.join import JOIN_SIGNED
from charter.governance.model import Genesis
from charter.governance.requests import SIGNED, SignedRequest
from charter.ledger.engine.commands import CommandContext, CommandRefused, NodeRecord
from charter.ledger.engine.engine import parse_tx_id
from charter.ledger.engine.errors import EngineError

GOV_TABLES = (
    state.CONSTITUTION_TABLE,
    state.MEMBERS_TABLE,
    state.NODES_TABLE,
    state.USERS_TABLE,
    state.PROPOSALS_TABLE,
    state.NONCES_TABLE,
    state.INTENTS_TABLE,
    state.META_TABLE,
    state.LOG_TABLE,
)


class MemoryState:
    """A plain table -> key -> bytes store that is a ``StateView``."""

    def __init__(self, tables: dict[str, dict[str, bytes]] | None = None) -> None:
        self.tables: dict[str, dict[str, bytes]] = tables or {}

    def get(self, table: str, key: str) -> bytes | None:
        return self.tables.get(table, {}).get(key)

    def items(self, table: str) -> Iterator[tuple[str, bytes]]:
        rows = self.tables.get(table, {})
        for key in sorted(rows):
            yield key, rows[key]

    def put(self, table: str, key: str, value: bytes | None) -> None:
        rows = self.tables.setdefault(table, {})
        if value is None:
            rows.pop(key, None)
        else:
            rows[key] = value

    @classmethod
    def copy_of(cls, view: state.StateView) -> MemoryState:
        return cls({t: dict(view.items(t)) for t in GOV_TABLES})


@dataclass(frozen=True, slots=True)
class Finding:
    where: str
    problem: str


@dataclass
class AuditReport:
    commands: int = 0
    signatures: int = 0
    """Member and join signatures re-verified over their stored bytes."""
    proposals: int = 0
    decisions: int = 0
    """Proposals whose final state (accepted, rejected, ...) the replay reached."""
    genesis_digest: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and self.commands > 0

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "commands": self.commands,
            "signatures": self.signatures,
            "proposals": self.proposals,
            "decisions": self.decisions,
            "genesis_digest": self.genesis_digest,
            "findings": [{"where": f.where, "problem": f.problem} for f in self.findings],
        }


def audit(view: state.StateView, *, genesis: Genesis | None = None) -> AuditReport:
    """Replay ``view``'s governance log from genesis and compare with ``view``'s state."""
    report = AuditReport()
    replay = MemoryState()
    handler = GovernanceHandler()
    rows = list(view.items(state.LOG_TABLE))
    if not rows:
        report.findings.append(Finding("log", "no governance command was logged"))
        return report
    for position, (key, data) in enumerate(rows):
        try:
            logged = LoggedCommand.decode(key, data)
        except GovernanceError as exc:
            report.findings.append(Finding(f"log/{key}", exc.message))
            continue
        where = logged.tx_id
        label = _label(logged.body)
        if position == 0:
            _check_bootstrap(report, logged, label, genesis)
        parsed = parse_tx_id(logged.tx_id)
        if parsed is None or parsed[1] != logged.seqno:
            report.findings.append(Finding(where, "the transaction id does not match its seqno"))
            continue
        ctx = CommandContext(
            app="gov",
            submitter=logged.submitter,
            member=logged.member,
            view=parsed[0],
            seqno=logged.seqno,
            tx_id=logged.tx_id,
            batch_seq=logged.batch_seq,
            state=replay,
            nodes=lambda name: NodeRecord(name, ""),
        )
        try:
            writes = handler.execute(ctx, logged.body)
        except CommandRefused as exc:
            report.findings.append(Finding(where, f"refused on replay: {exc.reason}"))
            continue
        except EngineError as exc:
            report.findings.append(Finding(where, f"cannot replay: {exc.message}"))
            continue
        report.commands += 1
        if label in (SIGNED, JOIN_SIGNED):
            report.signatures += 1
        for w in writes:
            replay.put(w.table, w.key, w.value)
    _compare(report, replay, view)
    proposals = state.proposals(replay)
    report.proposals = len(proposals)
    report.decisions = sum(1 for p in proposals if not p.open)
    return report


def _label(body: bytes) -> object:
    try:
        value = decode(body)
    except Exception:  # reported by the replay itself
        return None
    return value.label if isinstance(value, Record) else None


def _check_bootstrap(
    report: AuditReport, logged: LoggedCommand, label: object, genesis: Genesis | None
) -> None:
    if label != BOOTSTRAP:
        report.findings.append(
            Finding(logged.tx_id, "the first governance command is not the bootstrap")
        )
        return
    record = decode(logged.body)
    assert isinstance(record, Record)
    raw = record.fields[0] if record.fields and type(record.fields[0]) is bytes else b""
    report.genesis_digest = hashlib.sha256(raw).hexdigest()
    if genesis is not None and raw != genesis.encode():
        report.findings.append(
            Finding(logged.tx_id, "the bootstrapped genesis differs from this network file's")
        )


def _compare(report: AuditReport, replay: MemoryState, view: state.StateView) -> None:
    for table in GOV_TABLES:
        ours = dict(replay.items(table))
        theirs = dict(view.items(table))
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                if key not in theirs:
                    problem = "missing from the audited state"
                elif key not in ours:
                    problem = "not explained by any logged command"
                else:
                    problem = "differs from what the logged commands produce"
                report.findings.append(Finding(f"{table}/{key}", problem))


def request_member(body: bytes) -> str | None:
    """The member a logged member request names (for display)."""
    try:
        return SignedRequest.decode(body).request.member
    except GovernanceError:
        return None


__all__ = ["GOV_TABLES", "AuditReport", "Finding", "MemoryState", "audit", "request_member"]
