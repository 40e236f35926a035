"""The messaging service of one node: the thin asyncio shell around batcher and aggregator.

One task (``_drive``) owns every decision and every write of this layer: it takes inputs
from one queue (messages to send, batches received, pins the ledger applied, blobs that
completed, time), feeds the pure ``Batcher`` and ``Aggregator``, and records the outcome
of each round in ONE database transaction (sealed batches, received messages, pins,
message states, ``message_confirmed``/``message_failed`` events, the aggregator's state).
Only after that commit are batches handed to the transfer, pins submitted to the ledger,
received batches acknowledged and waiters woken. A crash between the two repeats the
after-commit steps at start (sealed batches whose pin was not seen are sent and pinned
again; duplicates are harmless on both paths).

A message bound to a token operation (``send_bound``) is sealed alone, in the round that
stores it, into a batch marked as pinned by ``tokens``; the caller embeds the answered
pins record in its token command. This service never pins such a batch itself and never
resubmits the command (a second transfer would move the tokens twice): it only sends the
batch, again after a restart too, and reads the transfer's outcome from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, select, update

from charter.codec.syrup import decode, encode
from charter.crypto.keys import Ed25519PrivateKey
from charter.errors import CharterError
from charter.ledger.engine import ApplyResult, Command, TxStatus
from charter.multiparty.aggregator import Aggregator, FailurePolicy, Held, PinRef, Released
from charter.multiparty.batch import Batch, SignedBatch, seal
from charter.multiparty.batcher import Batcher, BatchLimits, Sealed
from charter.multiparty.bound import BoundMessage, may_carry_pins, pins_record_of
from charter.multiparty.errors import InvalidMessage, MalformedBatch, MultipartyError
from charter.multiparty.model import (
    DataItem,
    Group,
    Message,
    MessageType,
    canonical_json,
    context_of,
)
from charter.multiparty.pins import APP, Clock, PinCommand, parse_body
from charter.multiparty.state import (
    delete_states_before,
    load_state,
    load_states,
    save_state,
    save_states,
)
from charter.store import Store
from charter.store.bulk import insert_many, update_many
from charter.store.events import NewEvent, append_events
from charter.store.groups import ensure_group
from charter.store.ids import new_id
from charter.store.messages import by_idempotency_key, data_of
from charter.store.models import BatchRow, DataRow, MessageRow, PinRow

__all__ = [
    "BoundMessage",
    "DataInput",
    "MessagingService",
    "MessagingSettings",
    "Outgoing",
    "SendRequest",
]

log = logging.getLogger(__name__)

AGGREGATOR_STATE = "mp.aggregator"
UNKNOWN_STATE = "mp.unknown."
"""Prefix of the rows that keep unattributed pins: one row per round, named by its last
seqno, deleted once every pin in it is older than the oldest pin still kept."""
SENDER_STATE = "mp.sender"
_ABOUT_KEPT = 100_000


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class MessagingSettings:
    batch: BatchLimits = field(default_factory=lambda: BatchLimits(500, 1 << 20, 0.0))
    fail_after_s: float | None = None
    """None: a context waits for missing data for ever; else fail it after this (ledger time)."""
    window: int = 32
    pin_retry_s: float = 0.2
    max_round: int = 2000
    """Inputs taken per round (one database transaction)."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> MessagingSettings:
        v = dict(values or {})
        batch = v.pop("batch", None)
        limits = BatchLimits(**batch) if isinstance(batch, Mapping) else cls().batch
        return cls(batch=limits, **v)

    @property
    def policy(self) -> FailurePolicy:
        after = None if self.fail_after_s is None else int(self.fail_after_s * 1_000_000)
        return FailurePolicy(fail_after_us=after, window=self.window)


@dataclass(frozen=True)
class DataInput:
    value: Any = None
    has_value: bool = False
    datatype: tuple[str, str] | None = None
    data_id: str | None = None


@dataclass(frozen=True)
class SendRequest:
    type: MessageType
    topic: str
    tag: str = ""
    cid: str = ""
    members: tuple[str, ...] = ()
    data: tuple[DataInput, ...] = ()
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """A stored message waiting for its batch (its nonce is given when the batch seals)."""

    id: str
    type: MessageType
    topic: str
    tag: str
    cid: str
    group: Group
    created_us: int
    data: tuple[DataItem, ...]

    @property
    def kind(self) -> str:
        return "broadcast" if self.type == "broadcast" else "private"

    def size(self) -> int:
        return 256 + sum(len(d.value or b"") + 128 for d in self.data)


@dataclass
class _Submit:
    message: Outgoing
    idempotency_key: str | None
    done: asyncio.Future[tuple[str, bool]]
    result: tuple[str, bool] | None = None
    error: Exception | None = None
    pinned_by: str = APP
    """Another app's transaction pins it: sealed alone, at once (``send_bound``)."""
    signed: SignedBatch | None = None
    view: bool = False
    """Answer the stored message and its data as the round stores them (``send_view``)."""
    stored: tuple[Any, list[Any]] | None = None
    """The message and data rows as written (attribute views, see ``_stored``)."""
    minted: frozenset[str] = frozenset()
    """Ids of data items the caller made up just now: no stored row can have them."""


@dataclass(frozen=True, slots=True)
class _About:
    """The columns of a message that releasing it reads."""

    id: str
    topic: str
    member: str
    group_hash: str | None


@dataclass
class _NewRows:
    """A round's new message and data rows, inserted once its batches are sealed: a
    message sealed in the round it arrives in is stored sealed, with no update after."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: list[dict[str, Any]] = field(default_factory=list)
    attach: list[dict[str, Any]] = field(default_factory=list)
    about: dict[str, _About] = field(default_factory=dict)
    """What releasing the round's stored messages will need (``MessagingService._about``)."""

    def learn(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.about[r["id"]] = _About(r["id"], r["topic"], r["member"], r["group_hash"])


@dataclass
class _Inbound:
    signed: SignedBatch
    done: asyncio.Future[None]


@dataclass(frozen=True)
class _Pin:
    seqno: int
    tx_id: str
    time_us: int
    submitter: str
    body: bytes
    app: str = APP
    refusal: str = ""
    """For a refused transaction of another app: its reason ("" : applied)."""


@dataclass(frozen=True)
class _Blob:
    hash: bytes


@dataclass(frozen=True)
class _Resend:
    pass


_Input = Outgoing | _Submit | _Inbound | _Pin | _Blob


class MessagingService:
    """Send, receive, order and record messages for one node."""

    def __init__(
        self,
        *,
        node: str,
        member: str,
        identity: Ed25519PrivateKey,
        store: Store | None,
        ledger: Any,
        transfer: Any,
        settings: MessagingSettings | None = None,
    ) -> None:
        self.node = node
        self.member = member
        self.identity = identity
        self._store = store
        self.ledger = ledger
        self.transfer = transfer
        self.settings = settings or MessagingSettings()
        net = ledger.network
        self.node_keys = {m.name: m.batch_key for m in net.members.values()}
        self.node_member = {m.name: (m.member or m.name) for m in net.members.values()}
        self.members = sorted(set(self.node_member.values()))
        self._queue: asyncio.Queue[_Input] = asyncio.Queue()
        self._batcher: Batcher[tuple[str, bytes], Outgoing] = Batcher(self.settings.batch)
        self.aggregator = Aggregator(self.settings.policy)
        self._nonces: dict[bytes, int] = {}
        self._unknown_rows = 0
        self._groups: set[str] = set()
        """Group hashes known to be in the database (added after their round commits)."""
        self._new_groups: set[str] = set()
        self._about: dict[str, _About] = {}
        """Topic, author member and group of stored messages not yet released here
        (learnt after their round commits, bounded): releasing needs no read for them."""
        self._waiters: dict[str, list[asyncio.Future[str]]] = {}
        self._unpinned: dict[bytes, SignedBatch] = {}
        """Own sealed batches whose pin this node has not yet seen applied."""
        self._clock_pending = False
        self._tg: asyncio.TaskGroup | None = None
        self.ready = asyncio.Event()
        self.rounds = 0
        self.observers: list[Callable[[str, str], None]] = []
        """Called with (message id, final state) after each release commits (quick, no raising)."""

    @property
    def store(self) -> Store:
        if self._store is None:
            raise LookupError("the index store is not open")
        return self._store

    @store.setter
    def store(self, store: Store) -> None:
        self._store = store

    # -- the world's inputs ---------------------------------------------------------------

    def on_apply(self, result: ApplyResult) -> None:
        """Ledger listener: queue every applied ``mp`` command, and every transaction of
        another app that may carry a pins record, valid or refused (quick, never raises)."""
        for tx in result.applied:
            cmd = tx.command
            if cmd is None:
                continue
            who = tx.submitter or ""
            if cmd.app == APP:
                if tx.status is not TxStatus.INVALID:
                    self._queue.put_nowait(_Pin(tx.seqno, tx.tx_id, 0, who, cmd.body))
            elif may_carry_pins(cmd.app, cmd.body):
                refusal = (tx.reason or "refused") if tx.status is TxStatus.INVALID else ""
                self._queue.put_nowait(_Pin(tx.seqno, tx.tx_id, 0, who, cmd.body, cmd.app, refusal))

    async def on_batch(self, inbound: Any) -> bool | None:
        """Transfer callback: a batch from an authenticated member node. Return = ack;
        ``False`` = acknowledged but refused (the transfer then fetches none of its blobs)."""
        try:
            signed = SignedBatch.decode(inbound.data)
        except MalformedBatch as exc:
            log.warning("mp.batch.refused", extra={"sender": inbound.sender, "reason": exc.message})
            return False  # acknowledged: resending it would not make it well-formed
        b = signed.batch
        key = self.node_keys.get(b.author_node)
        if (
            b.author_node != inbound.sender
            or key is None
            or self.node_member.get(b.author_node) != b.author_member
            or self.member not in b.group.members
        ):
            log.warning("mp.batch.refused", extra={"sender": inbound.sender, "reason": "author"})
            return False
        try:
            signed.verify(key)
        except MalformedBatch:
            log.warning("mp.batch.refused", extra={"sender": inbound.sender, "reason": "signature"})
            return False
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Inbound(signed, done))
        await done
        return None

    def on_blob(self, progress: Any) -> None:
        if str(getattr(progress.state, "value", progress.state)) == "ready":
            self._queue.put_nowait(_Blob(progress.hash))

    # -- sending --------------------------------------------------------------------------

    def group_for(self, req: SendRequest) -> Group:
        if req.type == "broadcast":
            return Group.of(self.members)
        unknown = sorted(set(req.members) - set(self.members))
        if unknown:
            raise InvalidMessage(f"not members of this network: {', '.join(unknown)}")
        if not req.members:
            raise InvalidMessage("a private message names its group's members")
        return Group.of([*req.members, self.member])

    async def send(self, req: SendRequest, items: Sequence[DataItem]) -> tuple[str, bool]:
        """Store a validated message and queue it for batching; (message id, created).

        The writer task stores it in its next round (one transaction for many submits).
        """
        mid, created, _stored = await self._submit(req, items, view=False)
        return mid, created

    async def send_view(
        self, req: SendRequest, items: Sequence[DataItem], minted: frozenset[str] = frozenset()
    ) -> tuple[str, bool, tuple[MessageRow, list[DataRow]] | None]:
        """``send``, and the message and data rows as its round stored them (None for an
        idempotent repeat): a REST answer needs no read of its own. ``minted``: ids of
        items the caller has just made up (``new_id``), which the round need not look for.
        """
        return await self._submit(req, items, view=True, minted=minted)

    async def _submit(
        self,
        req: SendRequest,
        items: Sequence[DataItem],
        *,
        view: bool,
        minted: frozenset[str] = frozenset(),
    ) -> tuple[str, bool, tuple[MessageRow, list[DataRow]] | None]:
        group = self.group_for(req)
        mid = new_id()
        out = Outgoing(mid, req.type, req.topic, req.tag, req.cid, group, now_us(), tuple(items))
        done: asyncio.Future[tuple[str, bool]] = asyncio.get_running_loop().create_future()
        sub = _Submit(out, req.idempotency_key, done, view=view, minted=minted)
        self._queue.put_nowait(sub)
        got, created = await done
        return got, created, sub.stored if created else None

    async def send_bound(
        self, req: SendRequest, items: Sequence[DataItem], pinned_by: str
    ) -> BoundMessage:
        """Store a validated message and seal it alone in a batch that a transaction of
        ``pinned_by`` will pin; answers its id and the pins record that transaction embeds.

        The batch is sent to the group once its round commits; nothing is submitted to
        the ledger here. A message whose transaction never applies stays ``sent``.
        """
        if pinned_by == APP:
            raise InvalidMessage("a bound message is pinned by another app's transaction")
        group = self.group_for(req)
        mid = new_id()
        out = Outgoing(mid, req.type, req.topic, req.tag, req.cid, group, now_us(), tuple(items))
        done: asyncio.Future[tuple[str, bool]] = asyncio.get_running_loop().create_future()
        sub = _Submit(out, None, done, pinned_by=pinned_by)
        self._queue.put_nowait(sub)
        await done
        assert sub.signed is not None
        signed = sub.signed
        return BoundMessage(mid, PinCommand(signed.hash, tuple(signed.batch.pins), now_us()))

    async def message_state(self, message_id: str) -> str | None:
        async with self.store.read() as s:
            state: str | None = (
                await s.execute(select(MessageRow.state).where(MessageRow.id == message_id))
            ).scalar_one_or_none()
        return state

    async def _record_submits(
        self, s: Any, submits: list[_Submit], new: _NewRows
    ) -> list[Outgoing]:
        """The round's new messages (their rows into ``new``); answer idempotent repeats
        and refusals."""
        accepted: list[Outgoing] = []
        keys: dict[str, str] = {}
        ids = [d.id for sub in submits for d in sub.message.data if d.id not in sub.minted]
        known: dict[str, DataRow] = {}
        for i in range(0, len(ids), 500):
            rows = (
                await s.execute(select(DataRow).where(DataRow.id.in_(ids[i : i + 500])))
            ).scalars()
            known.update({r.id: r for r in rows})
        used: set[str] = set()
        new_messages = new.messages
        new_data = new.data
        attach = new.attach
        for sub in submits:
            o = sub.message
            key = sub.idempotency_key
            if key is not None:
                known_id = keys.get(key)
                if known_id is None:
                    existing = await by_idempotency_key(s, self.member, key)
                    known_id = None if existing is None else existing.id
                if known_id is not None:
                    sub.result = (known_id, False)
                    continue
            taken = {d.id: known[d.id] for d in o.data if d.id in known}
            if any(r.message_id is not None or r.id in used for r in taken.values()):
                sub.error = InvalidMessage("a data item belongs to another message")
                continue
            used.update(taken)
            gh = o.group.hash.hex()
            if gh not in self._groups and gh not in self._new_groups:
                await ensure_group(s, gh, list(o.group.members))
                self._new_groups.add(gh)
            new_messages[o.id] = _message_values(
                id=o.id,
                member=self.member,
                node=self.node,
                idempotency_key=key,
                type=o.type,
                topic=o.topic,
                group_hash=gh,
                context=context_of(o.topic, o.group.hash).hex(),
                state="pending",
                hash=None,
                batch_id=None,
                cid=o.cid or None,
                created_us=o.created_us,
                tag=o.tag,
            )
            for pos, d in enumerate(o.data):
                existing_data = taken.get(d.id)
                if existing_data is not None:
                    attach.append(
                        {"b_id": d.id, "message_id": o.id, "position": pos, "hash": d.hash.hex()}
                    )
                else:
                    new_data.append(_data_values(d, o.id, pos, o.created_us))
            if key is not None:
                keys[key] = o.id
            sub.result = (o.id, True)
            accepted.append(o)
        return accepted

    async def _insert_new(self, s: Any, new: _NewRows, submits: list[_Submit]) -> None:
        """Store the round's new rows; the submits that asked for a view get their rows
        as stored (read back only for a message that took up stored data)."""
        views = {
            sub.message.id: sub
            for sub in submits
            if sub.view and sub.result is not None and sub.result[1]
        }
        rows = list(new.messages.values())
        new.learn(rows)
        returned = await insert_rows(s, MESSAGES, rows, ("id", "seq") if views else ())
        await insert_rows(s, DATA, new.data)  # after the messages: data refer to them
        await update_rows(s, DATA, "id", new.attach)
        if not views:
            return
        seqs = dict(returned)
        attached = {a["message_id"] for a in new.attach}
        data: dict[str, list[Any]] = {}
        for d in new.data:
            if d["message_id"] in views:
                value = None if d["value"] is JSON.NULL else d["value"]
                data.setdefault(d["message_id"], []).append(_stored(_DATA_BLANK, d, value=value))
        for mid, sub in views.items():
            if mid not in attached:
                row = _stored(_MESSAGE_BLANK, new.messages[mid], seq=seqs[mid])
                sub.stored = (row, sorted(data.get(mid, []), key=lambda r: r.position))
        await self._read_views(s, [sub for mid, sub in views.items() if mid in attached])

    async def wait_final(self, message_id: str, within: float) -> str | None:
        """The message's final state (confirmed/failed), or None if ``within`` passed."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(fut)
        state = await self.message_state(message_id)
        if state in ("confirmed", "failed"):
            self._forget_waiter(message_id, fut)
            return state
        try:
            async with asyncio.timeout(within):
                return await fut
        except TimeoutError:
            return None
        finally:
            self._forget_waiter(message_id, fut)

    def _forget_waiter(self, message_id: str, fut: asyncio.Future[str]) -> None:
        futs = self._waiters.get(message_id)
        if futs is not None and fut in futs:
            futs.remove(fut)
            if not futs:
                del self._waiters[message_id]

    # -- running --------------------------------------------------------------------------

    async def run(self) -> None:
        await self._recover()
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for signed in list(self._unpinned.values()):
                tg.create_task(self._dispatch(signed))
            self.ready.set()
            try:
                await self._drive()
            finally:
                self._tg = None

    async def _recover(self) -> None:
        async with self.store.read() as s:
            snap = await load_state(s, AGGREGATOR_STATE)
            unknown = [
                PinRef.from_record(r)
                for _name, value in await load_states(s, UNKNOWN_STATE)
                for r in decode(value)
            ]
            sender = await load_state(s, SENDER_STATE)
            sealed = (
                await s.execute(
                    select(BatchRow).where(BatchRow.node == self.node, BatchRow.state == "sealed")
                )
            ).scalars()
            for b in sealed:
                if b.payload is not None:
                    signed = SignedBatch.decode(b.payload)
                    self._unpinned[signed.hash] = signed
            pending = list(
                (
                    await s.execute(
                        select(MessageRow)
                        .where(MessageRow.node == self.node, MessageRow.state == "pending")
                        .order_by(MessageRow.seq)
                    )
                ).scalars()
            )
            data: dict[str, list[DataRow]] = {}
            if pending:
                rows = (
                    await s.execute(
                        select(DataRow)
                        .where(DataRow.message_id.in_([m.id for m in pending]))
                        .order_by(DataRow.position)
                    )
                ).scalars()
                for d in rows:
                    data.setdefault(d.message_id or "", []).append(d)
            groups = {}
            for m in pending:
                if m.group_hash and m.group_hash not in groups:
                    from charter.store.groups import get_group

                    g = await get_group(s, m.group_hash)
                    if g is not None:
                        groups[m.group_hash] = Group.of(g.members)
        if snap is not None:
            self.aggregator = Aggregator.restore(snap, self.settings.policy, unknown)
        if sender is not None:
            self._nonces = _decode_nonces(sender)
        for m in pending:
            group = groups.get(m.group_hash or "")
            if group is None:
                continue
            self._queue.put_nowait(
                Outgoing(
                    m.id,
                    m.type,  # type: ignore[arg-type]
                    m.topic,
                    getattr(m, "tag", None) or "",
                    m.cid or "",
                    group,
                    m.created_us,
                    tuple(_item_of(d) for d in data.get(m.id, [])),
                )
            )

    async def _drive(self) -> None:
        while True:
            first = await self._next_input()
            inputs: list[_Input] = [] if first is None else [first]
            while len(inputs) < self.settings.max_round and not self._queue.empty():
                inputs.append(self._queue.get_nowait())
            await self._round(inputs)

    async def _next_input(self) -> _Input | None:
        deadline = self._batcher.deadline()
        if deadline is None:
            return await self._queue.get()
        wait = deadline - time.monotonic()
        if wait <= 0:
            return None
        try:
            async with asyncio.timeout(wait):
                return await self._queue.get()
        except TimeoutError:
            return None

    async def _round(self, inputs: list[_Input]) -> None:
        released: list[Released] = []
        sealed: list[SignedBatch] = []
        acks: list[asyncio.Future[None]] = []
        pins: list[dict[str, Any]] = []
        agg = self.aggregator
        now = time.monotonic()
        submits = [i for i in inputs if isinstance(i, _Submit)]
        try:
            async with self.store.transaction() as s:
                fresh = [i for i in inputs if isinstance(i, Outgoing)]
                new = _NewRows()
                if submits:
                    fresh += await self._record_submits(s, submits, new)
                bound = {sub.message.id: sub for sub in submits if sub.pinned_by != APP}
                if bound:
                    fresh = [o for o in fresh if o.id not in bound]
                    for sub in bound.values():
                        if sub.result is None:
                            continue  # refused by _record_submits
                        o = sub.message
                        alone = Sealed((o.kind, o.group.hash), (o,), o.size())
                        signed = sub.signed = self._seal(alone, sub.pinned_by)
                        sealed.append(signed)
                        await self._record_sealed(s, signed, new)
                        held = [self._held(m, signed) for m in signed.batch.messages]
                        released += agg.batch_arrived(
                            signed.hash, self.node, self._candidates(signed.batch.group), held
                        )
                seal_due: list[Sealed[tuple[str, bytes], Outgoing]] = []
                for o in fresh:
                    key = (o.kind, o.group.hash)
                    seal_due.extend(self._batcher.add(key, o, o.size(), now))
                seal_due.extend(self._batcher.tick(now))
                for group in seal_due:
                    signed = self._seal(group)
                    sealed.append(signed)
                    await self._record_sealed(s, signed, new)
                    held = [self._held(m, signed) for m in signed.batch.messages]
                    released += agg.batch_arrived(
                        signed.hash, self.node, self._candidates(signed.batch.group), held
                    )
                await self._insert_new(s, new, submits)
                for item in inputs:
                    if isinstance(item, _Inbound):
                        acks.append(item.done)
                        got = await self._record_inbound(s, item.signed, new)
                        if got is not None:
                            released += agg.batch_arrived(
                                item.signed.hash,
                                item.signed.batch.author_node,
                                self._candidates(item.signed.batch.group),
                                got,
                            )
                    elif isinstance(item, _Pin):
                        released += self._take_pin(item, pins)
                    elif isinstance(item, _Blob):
                        released += agg.blob_arrived(item.hash)
                contexts = dict((r.pin, c) for r, c in agg.take_attributed())
                for p in pins:
                    c = contexts.pop(bytes.fromhex(p["pin"]), None)
                    if c is not None:
                        p["context"] = c.hex()
                await insert_rows(s, PINS, pins)
                for pin, c in contexts.items():  # placed later than first seen
                    await s.execute(
                        update(PinRow)
                        .where(PinRow.pin == pin.hex(), PinRow.context.is_(None))
                        .values(context=c.hex())
                    )
                finals = await self._record_released(s, released, new)
                states = {AGGREGATOR_STATE: agg.snapshot(with_unknown=False)}
                new_unknown = agg.take_new_unknown()
                if new_unknown:  # append-only rows, so a round's cost does not grow with them
                    last = max(r.seqno for r in new_unknown)
                    await save_state(
                        s,
                        f"{UNKNOWN_STATE}{last:020d}",
                        encode([r.to_record() for r in new_unknown]),
                    )
                    self._unknown_rows += 1
                    if self._unknown_rows % 256 == 0:
                        oldest = agg.oldest_unknown_seqno()
                        if oldest is not None:
                            await delete_states_before(s, UNKNOWN_STATE, f"{oldest:020d}")
                if sealed:
                    states[SENDER_STATE] = _encode_nonces(self._nonces)
                await save_states(s, states)
        except BaseException as exc:
            self._new_groups.clear()
            err = exc if isinstance(exc, Exception) else MultipartyError("stopped")
            for fut in acks:
                if not fut.done():
                    fut.set_exception(err)
            for sub in submits:
                if not sub.done.done():
                    sub.done.set_exception(err)
            raise
        self.rounds += 1
        self._groups |= self._new_groups
        self._new_groups.clear()
        about = self._about
        about.update(new.about)
        if len(about) > _ABOUT_KEPT:  # messages never released here: forget the oldest
            for mid in list(itertools.islice(about, len(about) - _ABOUT_KEPT)):
                del about[mid]
        for sub in submits:
            if sub.done.done():
                continue
            if sub.result is not None:
                sub.done.set_result(sub.result)
            else:
                sub.done.set_exception(sub.error or MultipartyError("not stored"))
        for fut in acks:
            if not fut.done():
                fut.set_result(None)
        for mid, final in finals.items():
            for waiter in self._waiters.pop(mid, []):
                if not waiter.done():
                    waiter.set_result(final)
            for observe in self.observers:
                observe(mid, final)
        if self._tg is not None:
            for signed in sealed:
                self._unpinned[signed.hash] = signed
                self._tg.create_task(self._dispatch(signed))
        deadline = agg.next_deadline_us()
        if deadline is not None and self._tg is not None and not self._clock_pending:
            self._clock_pending = True
            self._tg.create_task(self._clock(deadline))

    # -- pieces of a round ----------------------------------------------------------------

    async def _read_views(self, s: Any, submits: list[_Submit]) -> None:
        """Read back the rows of these submits' new messages, as they will commit."""
        want = {sub.message.id: sub for sub in submits}
        ids = list(want)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            rows = (await s.execute(select(MessageRow).where(MessageRow.id.in_(part)))).scalars()
            data = await data_of(s, part)
            for row in rows:
                want[row.id].stored = (row, data.get(row.id, []))

    def _candidates(self, group: Group) -> list[str]:
        return sorted(n for n, m in self.node_member.items() if m in group.members)

    def _held(self, m: Message, signed: SignedBatch) -> Held:
        missing = {b for b in m.blobs if not self.transfer.blobs.has(b)}
        return Held(
            m.id,
            m.context,
            m.author_node,
            m.nonce,
            m.pin,
            signed.hash,
            missing,
            m.created_us,
            signed.batch.pinned_by,
        )

    def _seal(
        self, group: Sealed[tuple[str, bytes], Outgoing], pinned_by: str = APP
    ) -> SignedBatch:
        messages = []
        for o in group.items:
            ctx = context_of(o.topic, o.group.hash)
            nonce = self._nonces.get(ctx, 0)
            self._nonces[ctx] = nonce + 1
            messages.append(
                Message(
                    o.id,
                    o.type,
                    self.member,
                    self.node,
                    o.topic,
                    o.tag,
                    o.cid,
                    o.group,
                    nonce,
                    o.created_us,
                    o.data,
                )
            )
        first = group.items[0]
        batch = Batch(
            new_id(),
            "broadcast" if first.type == "broadcast" else "private",
            self.member,
            self.node,
            first.group,
            now_us(),
            tuple(messages),
            pinned_by,
        )
        return seal(batch, self.identity)

    async def _record_sealed(self, s: Any, signed: SignedBatch, new: _NewRows) -> None:
        """Store a sealed batch; its messages become ``sent`` (those not yet inserted are
        changed in ``new``, the others updated)."""
        b = signed.batch
        h = signed.hash.hex()
        await insert_rows(s, BATCHES, [_batch_values(signed, "sealed")])
        stored: list[dict[str, Any]] = []
        for m in b.messages:
            sealed = {"state": "sent", "batch_id": h, "hash": m.hash.hex()}
            values = new.messages.get(m.id)
            if values is not None:
                values.update(sealed)
            else:
                stored.append({"b_id": m.id, **sealed})
        await update_rows(s, MESSAGES, "id", stored)

    async def _record_inbound(
        self, s: Any, signed: SignedBatch, new: _NewRows
    ) -> list[Held] | None:
        """Store a received batch and its messages; None if it was here already."""
        h = signed.hash.hex()
        b = signed.batch
        ids = [m.id for m in b.messages]
        # one query: the batch's hash if it is here, the ids of its messages that are
        # (a message id equal to its own batch's hash would need a preimage of that hash)
        here = select(BatchRow.id).where(BatchRow.id == h)
        found = {
            r[0]
            for r in await s.execute(
                here.union_all(select(MessageRow.id).where(MessageRow.id.in_(ids)))
            )
        }
        if h in found:
            return None
        if found:
            log.warning("mp.batch.refused", extra={"batch": h, "reason": "message id reused"})
            return None
        gh = b.group.hash.hex()
        if gh not in self._groups and gh not in self._new_groups:
            await ensure_group(s, gh, list(b.group.members))
            self._new_groups.add(gh)
        await insert_rows(s, BATCHES, [_batch_values(signed, "pending")])
        messages: list[dict[str, Any]] = []
        data: list[dict[str, Any]] = []
        stamp = now_us()
        for m in b.messages:
            messages.append(
                _message_values(
                    id=m.id,
                    member=m.author_member,
                    node=m.author_node,
                    idempotency_key=None,
                    type=m.type,
                    topic=m.topic,
                    group_hash=m.group_hash.hex(),
                    context=m.context.hex(),
                    state="sent",
                    hash=m.hash.hex(),
                    batch_id=h,
                    cid=m.cid or None,
                    created_us=m.created_us,
                    tag=m.tag,
                )
            )
            data.extend(_data_values(d, m.id, pos, stamp) for pos, d in enumerate(m.data))
        await insert_rows(s, MESSAGES, messages)
        await insert_rows(s, DATA, data)
        new.learn(messages)
        return [self._held(m, signed) for m in b.messages]

    def _take_pin(self, item: _Pin, pins: list[dict[str, Any]]) -> list[Released]:
        agg = self.aggregator
        cmd: PinCommand | Clock | None
        if item.app == APP:
            try:
                cmd = parse_body(item.body)
            except MultipartyError:
                return []  # the handler refuses these: they never apply
        else:
            cmd = pins_record_of(item.app, item.body)
            if cmd is None:
                return []  # it carried no (well-formed) pins record
        if isinstance(cmd, Clock):
            return agg.clock(item.seqno, cmd.time_us)
        if item.seqno <= agg.processed_seqno:
            return []
        if item.submitter == self.node:
            self._unpinned.pop(cmd.batch_hash, None)
        if item.refusal:
            return agg.pin_refused(
                item.seqno,
                item.tx_id,
                cmd.time_us,
                item.submitter,
                cmd.batch_hash,
                cmd.pins,
                item.refusal,
                item.app,
            )
        stamp = now_us()
        for i, p in enumerate(cmd.pins):
            row: dict[str, Any] = {
                "ledger_seqno": item.seqno,
                "tx_id": item.tx_id,
                "pin": p.hex(),
                "batch_hash": cmd.batch_hash.hex(),
                "context": None,
                "index_in_batch": i,
                "dispatched": False,
                "created_us": stamp,
            }
            for name, value in (("submitter", item.submitter), ("time_us", item.time_us)):
                if name in PINS.c:
                    row[name] = value
            pins.append(row)
        return agg.pin_committed(
            item.seqno,
            item.tx_id,
            cmd.time_us,
            item.submitter,
            cmd.batch_hash,
            cmd.pins,
            item.app,
        )

    async def _record_released(
        self, s: Any, released: list[Released], new: _NewRows
    ) -> dict[str, str]:
        if not released:
            return {}
        about = self._about
        rows: dict[str, Any] = {}
        ids: list[str] = []
        for r in released:
            if r.message_id is None:
                continue
            known = about.pop(r.message_id, None) or new.about.pop(r.message_id, None)
            if known is None:
                ids.append(r.message_id)
            else:
                rows[r.message_id] = known
        for i in range(0, len(ids), 500):
            got = await s.execute(
                select(
                    MessageRow.id, MessageRow.topic, MessageRow.member, MessageRow.group_hash
                ).where(MessageRow.id.in_(ids[i : i + 500]))
            )
            rows.update({r.id: r for r in got})
        events: list[NewEvent] = []
        finals: dict[str, str] = {}
        stamp = now_us()
        updates: list[dict[str, Any]] = []
        batches: dict[str, tuple[str, str]] = {}
        """Batch hash -> (state, tx id): confirmed ones, and bound ones whose pin was refused."""
        for r in released:
            row = rows.get(r.message_id or "")
            state: str = r.outcome
            if row is not None:
                updates.append(
                    {
                        "b_id": row.id,
                        "state": state,
                        "pin_seqno": r.pin.seqno,
                        "pin_tx_id": r.pin.tx_id,
                        "confirmed_us": stamp if state == "confirmed" else None,
                        "reason": r.reason or None,
                    }
                )
                finals[row.id] = state
                if state == "confirmed" or r.pin.refusal:
                    batches[r.pin.batch_hash.hex()] = (state, r.pin.tx_id)
            events.append(
                NewEvent(
                    "message_confirmed" if state == "confirmed" else "message_failed",
                    reference=r.message_id,
                    correlator=r.pin.batch_hash.hex(),
                    topic=None if row is None else row.topic,
                    author=None if row is None else row.member,
                    group_hash=None if row is None else row.group_hash,
                    tx_id=r.pin.tx_id,
                )
            )
        await update_rows(s, MESSAGES, "id", updates)
        await update_rows(
            s,
            BATCHES,
            "id",
            [{"b_id": h, "state": st, "tx_id": tx} for h, (st, tx) in sorted(batches.items())],
        )
        await append_events(s, events)
        return finals

    # -- after commit ---------------------------------------------------------------------

    async def _dispatch(self, signed: SignedBatch) -> None:
        """Hand a sealed batch to the transfer, then pin it, retrying until applied."""
        b = signed.batch
        recipients = self._candidates(b.group)
        blobs = []
        from charter.multiparty.transfer import BlobRef

        for m in b.messages:
            for d in m.data:
                if d.blob_hash:
                    blobs.append(BlobRef(d.blob_hash, d.blob_size))
        delay = self.settings.pin_retry_s
        while True:
            try:
                await self.transfer.send_batch(recipients, signed.raw, signed.hash, blobs=blobs)
                break
            except CharterError as exc:
                log.warning("mp.batch.send_retry", extra={"reason": exc.message})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if b.pinned_by != APP:
            return  # its own app's transaction pins it (see the module notes)
        body = PinCommand(signed.hash, tuple(b.pins), now_us()).encode()
        delay = self.settings.pin_retry_s
        while signed.hash in self._unpinned:
            try:
                ticket = await self.ledger.submit(
                    Command(APP, body, client_ref=signed.hash.hex()), wait="accepted"
                )
                if ticket.status is TxStatus.INVALID:  # refused by rule: retrying cannot help
                    log.warning("mp.pin.invalid", extra={"reason": ticket.reason})
                return
            except CharterError as exc:
                log.info("mp.pin.retry", extra={"reason": exc.message})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _clock(self, deadline_us: int) -> None:
        """Move ledger time past a failure deadline when nothing else does: once this
        node's clock has passed it, submit ``<charter-mp-clock now>``."""
        try:
            while self.aggregator.ledger_time_us < deadline_us:
                wait = (deadline_us - now_us()) / 1_000_000
                if wait > 0:
                    await asyncio.sleep(wait + 0.05)  # a timer: the deadline is a time
                    continue
                with contextlib.suppress(CharterError):
                    body = Clock(now_us()).encode()
                    await self.ledger.submit(Command(APP, body), wait="accepted")
                await asyncio.sleep(self.settings.pin_retry_s)
        finally:
            self._clock_pending = False


MESSAGES = MessageRow.__table__
DATA = DataRow.__table__
_MESSAGE_BLANK: dict[str, Any] = {c.key: None for c in MESSAGES.c}
_DATA_BLANK: dict[str, Any] = {c.key: None for c in DATA.c}


def _stored(blank: dict[str, Any], values: dict[str, Any], **more: Any) -> SimpleNamespace:
    """A row as just written, read by attribute like the mapped class (whose instances
    cost several times as much to make: the round answers hundreds a second). Columns
    not written read None, as on a new instance of the mapped class."""
    return SimpleNamespace(**{**blank, **values, **more})


BATCHES = BatchRow.__table__
PINS = PinRow.__table__


async def insert_rows(
    s: Any, table: Any, rows: list[dict[str, Any]], returning: tuple[str, ...] = ()
) -> list[tuple[Any, ...]]:
    """Multi-row inserts (no ORM objects: thousands of rows per round)."""
    return await insert_many(s, table, rows, returning=returning)


async def update_rows(s: Any, table: Any, key: str, rows: list[dict[str, Any]]) -> None:
    """Update rows by ``key`` (given as ``b_<key>``); every dict has the same columns."""
    await update_many(s, table, key, rows)


def _message_values(*, tag: str, **values: Any) -> dict[str, Any]:
    out = {c.key: values.get(c.key) for c in MESSAGES.c if c.key not in ("seq", "tag")}
    if "tag" in MESSAGES.c:
        out["tag"] = tag or None
    return out


def _batch_values(signed: SignedBatch, state: str) -> dict[str, Any]:
    b = signed.batch
    h = signed.hash.hex()
    return {
        "id": h,
        "hash": h,
        "author": b.author_member,
        "node": b.author_node,
        "type": b.kind,
        "group_hash": b.group.hash.hex(),
        "payload": signed.raw,
        "payload_ref": None,
        "state": state,
        "tx_id": None,
        "created_us": b.created_us,
        "confirmed_us": None,
    }


def _data_values(d: DataItem, message_id: str, pos: int, stamp: int) -> dict[str, Any]:
    return {
        "id": d.id,
        "message_id": message_id,
        "position": pos,
        "value": _json_value(d.json_value()),
        "datatype_name": d.datatype_name or None,
        "datatype_version": d.datatype_version or None,
        "blob_hash": d.blob_hash.hex() if d.blob_hash else None,
        "blob_size": d.blob_size if d.blob_hash else None,
        "blob_name": d.blob_name or None,
        "hash": d.hash.hex(),
        "created_us": stamp,
    }


def _json_value(value: Any) -> Any:
    """JSON ``null`` rather than SQL NULL (the column is not nullable)."""
    return JSON.NULL if value is None else value


def _item_of(d: DataRow) -> DataItem:
    value = None if d.value is None and d.blob_hash else canonical_json(d.value)
    return DataItem(
        d.id,
        value,
        d.datatype_name or "",
        d.datatype_version or "",
        bytes.fromhex(d.blob_hash) if d.blob_hash else b"",
        d.blob_size if d.blob_size is not None else -1,
        d.blob_name or "",
    )


def _encode_nonces(nonces: Mapping[bytes, int]) -> bytes:
    from charter.codec.syrup import encode

    return encode({k: v for k, v in nonces.items()})


def _decode_nonces(data: bytes) -> dict[bytes, int]:
    from charter.codec.syrup import decode

    value = decode(data)
    if not isinstance(value, dict):
        return {}
    return {bytes(k): int(v) for k, v in value.items()}
