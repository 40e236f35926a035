"""Token events on the node's event log: ``token_pool_confirmed``, ``token_transfer_confirmed``.

An event is appended once its transaction is Committed (covered by a signature), in
ledger order. The ledger state is the source: the apply listener only notes the seqnos
of tokens transactions that applied (a few integers, no decoding); the writer task
reads each one's row from ledger state (the pool row, or the transfer's history row)
when the transaction is committed, and appends its event in the index store together
with a cursor (counter ``tokens.events``: the last seqno turned into an event). After a
restart the engine re-applies the log past its snapshot and the cursor skips what was
already appended, so each event is appended once.

Event fields: ``reference`` = the pool name, ``topic`` = ``tokens/<pool>``, ``author`` =
the member whose node submitted it, ``tx_id`` = the transaction, ``correlator`` = the
message pin (hex) a transfer carried, if any.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from sqlalchemy import insert, select, update

from charter.ledger.engine import ApplyResult, Engine, TxStatus
from charter.store import Store
from charter.store.events import NewEvent, append_events
from charter.store.models import CounterRow
from charter.tokens.model import T_POOLS, T_TRANSFERS, Pool, TransferRecord, transfer_key

log = logging.getLogger(__name__)

CURSOR = "tokens.events"
POOL_CONFIRMED = "token_pool_confirmed"
TRANSFER_CONFIRMED = "token_transfer_confirmed"
MAX_PER_COMMIT = 2000


def pool_event(pool: Pool) -> NewEvent:
    return NewEvent(
        POOL_CONFIRMED,
        reference=pool.name,
        topic=f"tokens/{pool.name}",
        author=pool.creator,
        tx_id=pool.tx_id,
    )


def transfer_event(rec: TransferRecord) -> NewEvent:
    return NewEvent(
        TRANSFER_CONFIRMED,
        reference=rec.pool,
        correlator=rec.pin.hex() or None,
        topic=f"tokens/{rec.pool}",
        author=rec.member,
        tx_id=rec.tx_id,
    )


class TokenEventFeed:
    """Collects applied tokens transactions; ``run`` turns committed ones into events."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine
        self._pending: deque[tuple[int, int, str | None]] = deque()
        """(seqno, view, pool name if it created a pool) in log order."""
        self._wake = asyncio.Event()

    def on_apply(self, result: ApplyResult) -> None:
        """The ledger listener: note tokens transactions that applied (quick, never raises)."""
        for tx in result.applied:
            if tx.command is None or tx.command.app != "tokens" or not tx.writes:
                continue
            created = next((w.key for w in tx.writes if w.table == T_POOLS), None)
            self._pending.append((tx.seqno, int(tx.tx_id.partition(".")[0]), created))
        if self._pending and result.committed:
            self._wake.set()

    def ready(self) -> list[tuple[int, NewEvent]]:
        """The events of the committed prefix of what is pending (removed from it)."""
        engine = self._engine()
        out: list[tuple[int, NewEvent]] = []
        while self._pending and len(out) < MAX_PER_COMMIT:
            seqno, view, created = self._pending[0]
            status = engine.status_at(view, seqno)
            if status is TxStatus.PENDING:
                break
            self._pending.popleft()
            if status is not TxStatus.COMMITTED:
                continue  # rolled back with its view: its writes are gone
            if created is not None:
                raw = engine.get(T_POOLS, created)
                if raw is not None:
                    out.append((seqno, pool_event(Pool.decode(created, raw))))
                continue
            key = transfer_key(seqno)
            raw = engine.get(T_TRANSFERS, key)
            if raw is not None:
                out.append((seqno, transfer_event(TransferRecord.decode(key, raw))))
        return out

    async def run(self, store: Store) -> None:
        """Append events as their transactions commit, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while batch := self.ready():
                await append_committed(store, batch)


_CURSOR_VALUE = select(CounterRow.value).where(CounterRow.name == CURSOR)


async def append_committed(store: Store, batch: list[tuple[int, NewEvent]]) -> int:
    """Append the events of ``batch`` (seqno order) past the cursor; answers how many.

    Core statements on the session's connection: the ORM's unit of work for one counter
    row cost more than the rows themselves in batches of a few hundred.
    """
    async with store.transaction() as session:
        conn = await session.connection()
        cursor = (await conn.execute(_CURSOR_VALUE)).scalar()
        fresh = [e for seqno, e in batch if cursor is None or seqno > cursor]
        if fresh:
            await append_events(session, fresh)
        last = batch[-1][0]
        if cursor is None:
            await conn.execute(insert(CounterRow).values(name=CURSOR, value=last))
        elif last > cursor:
            await conn.execute(
                update(CounterRow).where(CounterRow.name == CURSOR).values(value=last)
            )
    return len(fresh)


__all__ = [
    "POOL_CONFIRMED",
    "TRANSFER_CONFIRMED",
    "TokenEventFeed",
    "append_committed",
    "pool_event",
    "transfer_event",
]
