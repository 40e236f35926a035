"""Who is waiting for which transactions: fed ``ApplyResult``s, returns what settled.

Sans-I/O like the engine: the driver maps each ``Settled`` to the future, HTTP request
or event subscription that asked. A submitter usually does not know its transaction
ids before they are applied, so it can watch a batch by ``(submitter, batch_seq)``;
the ids of the batch's transactions are then watched until each is Committed or
Invalid.
"""

from __future__ import annotations

from dataclasses import dataclass

from charter.ledger.engine.outcomes import AppliedTx, ApplyResult, TxStatus


@dataclass(frozen=True, slots=True)
class Settled:
    """A watched transaction reached a final status; ``tx`` if it was applied while watched."""

    tx_id: str
    status: TxStatus
    tx: AppliedTx | None = None

    @property
    def reason(self) -> str | None:
        return None if self.tx is None else self.tx.reason


class Waiters:
    __slots__ = ("_batches", "_watched")

    def __init__(self) -> None:
        self._batches: set[tuple[str, int]] = set()
        self._watched: dict[str, AppliedTx | None] = {}

    def __len__(self) -> int:
        return len(self._batches) + len(self._watched)

    def watch_batch(self, submitter: str, batch_seq: int) -> None:
        """Watch every transaction of a batch not yet applied."""
        self._batches.add((submitter, batch_seq))

    def unwatch_batch(self, submitter: str, batch_seq: int) -> bool:
        """Stop watching a batch that will not be applied (its submitter gave up on it);
        True if it was watched. Its transactions, once applied, are not reported."""
        key = (submitter, batch_seq)
        if key in self._batches:
            self._batches.discard(key)
            return True
        return False

    def watch(self, tx_id: str) -> None:
        """Watch a transaction that is not yet applied, or is Pending (see ``Engine.status``)."""
        self._watched.setdefault(tx_id, None)

    def feed(self, result: ApplyResult) -> list[Settled]:
        settled: list[Settled] = []
        batches = self._batches
        watched = self._watched
        for tx in result.applied:
            batch = None if tx.batch_seq is None else (tx.submitter or "", tx.batch_seq)
            if tx.tx_id not in watched and batch not in batches:
                continue
            if tx.status is TxStatus.INVALID:
                watched.pop(tx.tx_id, None)
                settled.append(Settled(tx.tx_id, TxStatus.INVALID, tx))
            else:
                watched[tx.tx_id] = tx
        if batches:
            for tx in result.applied:
                if tx.batch_seq is not None:
                    batches.discard((tx.submitter or "", tx.batch_seq))
        for tx_id in result.committed:
            if tx_id in watched:
                settled.append(Settled(tx_id, TxStatus.COMMITTED, watched.pop(tx_id)))
        return settled
