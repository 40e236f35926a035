"""A one-node ledger for handler tests: applies commands exactly as the engine does
(handler writes checked by ``check_writes``, applied atomically, refusals change
nothing), without Raft or signatures."""

from __future__ import annotations

from dataclasses import dataclass, field

from charter.ledger.engine import CommandContext, CommandRefused, NodeRecord
from charter.ledger.engine.commands import check_writes
from charter.ledger.engine.kv import KVStore
from charter.tokens import TokensHandler
from charter.tokens.model import Operation


@dataclass
class Outcome:
    seqno: int
    rule: str | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.rule is None


@dataclass
class Ledger:
    handler: TokensHandler = field(default_factory=TokensHandler)
    kv: KVStore = field(default_factory=KVStore)
    seqno: int = 0
    clock: int = 1_000_000

    def run(self, member: str, op: Operation | bytes, node: str | None = None) -> Outcome:
        self.seqno += 1
        self.clock += 7
        body = op if isinstance(op, bytes) else op.encode()
        ctx = CommandContext(
            app="tokens",
            submitter=node or f"node-of-{member}",
            member=member,
            view=1,
            seqno=self.seqno,
            tx_id=f"1.{self.seqno}",
            batch_seq=self.clock,
            state=self.kv,
            nodes=lambda name: NodeRecord(name, member),
        )
        try:
            writes = check_writes("tokens", self.handler.tables, self.handler.execute(ctx, body))
        except CommandRefused as exc:
            return Outcome(self.seqno, exc.rule, exc.reason)
        self.kv.apply(self.seqno, writes)
        return Outcome(self.seqno, None)
