"""The aggregator: releases messages per context in the ledger order of their pins.

A pure state machine (no clock, no I/O). Its inputs:

- ``pin_committed``: an ``mp`` command applied by the ledger (its seqno, tx id, the
  submitting node the engine verified, the submitter's batch time, batch hash, pins), or a
  valid transaction of another app carrying a pins record (``source``: a token operation
  carrying a message);
- ``pin_refused``: an Invalid transaction carrying a pins record (the token operation
  was refused), with the refusal's reason;
- ``batch_arrived``: a batch whose signature and pins the caller verified;
- ``blob_arrived``: a blob a held message refers to is now complete here;
- ``tick``: ledger time moved (the batch time of any applied transaction).

Its outputs are ``Released`` actions, in the order the caller must record them.

**Rule.** Within one context, messages are released in the ledger order of their pins
(seqno, then position in the command), across all authors. A context's first unreleased
pin (its *head*) holds back every later pin of that context until its batch and every blob
it names have arrived. Other contexts are never held back by it.

**Knowing which pins are ours.** A pin is ``sha256(context, author node, nonce)``. Once
this node knows a context (a batch of it arrived), it expects, for each node of the
context's group, the next ``window`` nonces' pins; a committed pin it expects is placed
in that context at once, even before its batch arrives, so it holds the context back.
A committed pin it does not expect is kept as *unknown*: when a batch reveals a new
context later, unknown pins of that context are placed where the ledger put them.
An expected pin is only accepted from the node it names (the engine verified the
submitter), so another node cannot occupy someone else's place.

**Bound messages.** A message whose batch names another app as its pinner
(``Held.pinned_by``) is confirmed only at a pin that app's valid transaction placed, and an
ordinary one only at an ``mp`` pin: a release at a pin of the wrong source fails the
message. A refused transaction's pin, from the node it names, is never placed: it takes
its nonce (so nothing can place that pin later) and fails its message, now if its batch is
here, or when the batch arrives. A refusal does not enter the context's queue, so it holds
nothing back. Placements and refusals of one pin count in ledger order: the first wins.

**Failure policy.** ``fail_after_us=None`` waits for ever. Otherwise a head whose batch
or blobs have not arrived when ledger time (the highest batch time applied so far, never
this node's clock) reaches the pin's own batch time plus ``fail_after_us`` is released
as *failed*, and the context moves on. Every node makes that decision at the same point
of the ledger; a node that got the data before that point confirms it, one that did not
fails it. A batch arriving after its pin failed yields a failed release for its message.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from charter.codec.syrup import Record, Symbol, decode, encode
from charter.multiparty.model import pin_of

__all__ = [
    "Aggregator",
    "Blocked",
    "FailurePolicy",
    "Held",
    "PinRef",
    "Released",
]

_SNAP = Symbol("charter-mp-aggregator")


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    fail_after_us: int | None = None
    """None: wait for ever; else fail a head this long (ledger time) after its pin."""
    window: int = 32
    """How many future nonces per (context, author node) are expected at once."""
    unknown_retention_us: int = 3600 * 1_000_000
    """Unknown pins older than this (ledger time) are forgotten."""
    max_unknown: int = 50_000
    """At most this many unknown pins are kept (the oldest are forgotten first)."""


@dataclass(frozen=True, slots=True, order=True)
class PinRef:
    """A pin at its place in the ledger."""

    seqno: int
    index: int
    tx_id: str = field(compare=False)
    time_us: int = field(compare=False)
    submitter: str = field(compare=False)
    batch_hash: bytes = field(compare=False)
    pin: bytes = field(compare=False)
    source: str = field(default="mp", compare=False)
    """The app of the transaction that carried it (``mp``, or ``tokens``)."""
    refusal: str = field(default="", compare=False)
    """The reason its transaction was refused ("" : it was valid)."""

    def to_record(self) -> list[object]:
        out: list[object] = [
            self.seqno,
            self.index,
            self.tx_id,
            self.time_us,
            self.submitter,
            self.batch_hash,
            self.pin,
        ]
        if self.source != "mp" or self.refusal:  # mp pins keep their seven fields
            out += [self.source, self.refusal]
        return out

    @classmethod
    def from_record(cls, r: Sequence[object]) -> PinRef:
        if len(r) not in (7, 9):
            raise ValueError("a pin record has 7 or 9 fields")
        return cls(*r)  # type: ignore[arg-type]


@dataclass(slots=True)
class Held:
    """A message whose batch arrived here and which has not been released."""

    message_id: str
    context: bytes
    author: str
    nonce: int
    pin: bytes
    batch_hash: bytes
    missing: set[bytes]
    """Blob hashes not yet here."""
    created_us: int = 0
    pinned_by: str = "mp"
    """The app whose valid transaction must place its pin (its batch says which)."""


@dataclass(frozen=True, slots=True)
class Released:
    outcome: Literal["confirmed", "failed"]
    context: bytes
    message_id: str | None
    """None when the message's batch never arrived here."""
    pin: PinRef
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Blocked:
    """What a held message waits for (``GET /messages/{id}/blocked-by``)."""

    message_id: str
    context: bytes
    waiting_for: Literal["pin", "batch", "blobs", "earlier"]
    pin: PinRef | None
    """The message's own pin, once committed."""
    blocker: PinRef | None
    """For ``earlier``/``batch``/``blobs``: the head pin the context waits on."""
    blocker_message: str | None
    """The head's message id, if its batch is here."""
    batch_hash: bytes | None
    """For ``batch``: the batch that has not arrived."""
    blobs: tuple[bytes, ...]
    """For ``blobs``: the blobs that have not arrived."""
    deadline_us: int | None
    """Ledger time at which the head fails under the policy (None: never)."""


@dataclass(slots=True)
class _Context:
    candidates: tuple[str, ...]
    high: dict[str, int]
    seen: dict[str, set[int]]
    queue: list[tuple[PinRef, str, int]]
    """Attributed pins not yet released, in ledger order: (ref, author, nonce)."""


class Aggregator:
    def __init__(self, policy: FailurePolicy | None = None) -> None:
        self.policy = policy or FailurePolicy()
        self.processed_seqno = 0
        self.ledger_time_us = 0
        self._contexts: dict[bytes, _Context] = {}
        self._expected: dict[bytes, tuple[bytes, str, int]] = {}
        self._unknown: dict[bytes, PinRef] = {}
        self._held: dict[bytes, Held] = {}
        self._held_by_id: dict[str, bytes] = {}
        self._blob_waiters: dict[bytes, set[bytes]] = {}
        self._failed: dict[bytes, PinRef] = {}
        self._refused: dict[bytes, PinRef] = {}
        """Refused pins that took their place, waiting for their batch to fail it."""
        self._attributed: list[tuple[PinRef, bytes]] = []
        self._new_unknown: list[PinRef] = []
        self._batches: dict[bytes, int] = {}
        """Batches that arrived here, with how many of their messages are still held."""

    # -- inputs ---------------------------------------------------------------------------

    def pin_committed(
        self,
        seqno: int,
        tx_id: str,
        time_us: int,
        submitter: str,
        batch_hash: bytes,
        pins: Sequence[bytes],
        source: str = "mp",
    ) -> list[Released]:
        if seqno <= self.processed_seqno:
            return []  # a replay of what this aggregator already took in
        self.processed_seqno = seqno
        touched: set[bytes] = set()
        for i, p in enumerate(pins):
            ref = PinRef(seqno, i, tx_id, time_us, submitter, batch_hash, p, source)
            ctx = self._attribute(ref)
            if ctx is not None:
                touched.add(ctx)
            elif p not in self._unknown:
                self._unknown[p] = ref
                self._new_unknown.append(ref)
        self._trim_unknown()
        out = self._advance_time(time_us)
        for ctx in sorted(touched):
            out.extend(self._release(ctx))
        return out

    def pin_refused(
        self,
        seqno: int,
        tx_id: str,
        time_us: int,
        submitter: str,
        batch_hash: bytes,
        pins: Sequence[bytes],
        reason: str,
        source: str,
    ) -> list[Released]:
        """An Invalid ``source`` transaction at ``seqno`` carried these pins: none is placed,
        and each one's message (from the node that submitted it) fails with ``reason``.
        Ledger time does not move: a refused transaction changes nothing else."""
        if seqno <= self.processed_seqno:
            return []
        self.processed_seqno = seqno
        out: list[Released] = []
        for i, p in enumerate(pins):
            ref = PinRef(
                seqno, i, tx_id, time_us, submitter, batch_hash, p, source, reason or "refused"
            )
            done = self._refuse(ref)
            if done is not None:
                out.extend(done)
            elif p not in self._unknown:
                self._unknown[p] = ref
                self._new_unknown.append(ref)
        self._trim_unknown()
        return out

    def clock(self, seqno: int, time_us: int) -> list[Released]:
        """A transaction without pins at ``seqno`` moved ledger time."""
        self.processed_seqno = max(self.processed_seqno, seqno)
        return self._advance_time(time_us)

    def tick(self, time_us: int) -> list[Released]:
        return self._advance_time(time_us)

    def batch_arrived(
        self,
        batch_hash: bytes,
        author: str,
        candidates: Iterable[str],
        messages: Sequence[Held],
    ) -> list[Released]:
        """``messages`` come from one verified batch; ``candidates`` are the nodes of its group."""
        if batch_hash in self._batches:
            return []
        cands = tuple(sorted(set(candidates)))
        out: list[Released] = []
        for ctx in sorted({h.context for h in messages} - self._contexts.keys()):
            # first, so that pins of these contexts seen earlier take their places
            out.extend(self._register(ctx, cands))
        touched: set[bytes] = set()
        fresh: list[Held] = []
        for h in messages:
            if h.pin in self._held or h.message_id in self._held_by_id:
                continue
            if h.pin in self._failed:
                ref = self._failed.pop(h.pin)
                out.append(
                    Released("failed", h.context, h.message_id, ref, "arrived after its pin failed")
                )
                continue
            if h.pin in self._refused:
                ref = self._refused.pop(h.pin)
                out.append(Released("failed", h.context, h.message_id, ref, ref.refusal))
                continue
            fresh.append(h)
        if not fresh:
            return out
        self._batches[batch_hash] = len(fresh)
        for h in fresh:
            self._held[h.pin] = h
            self._held_by_id[h.message_id] = h.pin
            for b in h.missing:
                self._blob_waiters.setdefault(b, set()).add(h.pin)
            touched.add(h.context)
        for ctx in sorted(touched):
            out.extend(self._release(ctx))
        return out

    def blob_arrived(self, blob_hash: bytes) -> list[Released]:
        touched: set[bytes] = set()
        for p in self._blob_waiters.pop(blob_hash, set()):
            h = self._held.get(p)
            if h is not None:
                h.missing.discard(blob_hash)
                touched.add(h.context)
        out: list[Released] = []
        for ctx in sorted(touched):
            out.extend(self._release(ctx))
        return out

    # -- queries --------------------------------------------------------------------------

    def blocked_by(self, message_id: str) -> Blocked | None:
        pin = self._held_by_id.get(message_id)
        if pin is None:
            return None
        h = self._held[pin]
        c = self._contexts.get(h.context)
        own: PinRef | None = None
        if c is not None:
            for ref, _a, _n in c.queue:
                if ref.pin == pin and ref.batch_hash == h.batch_hash:
                    own = ref
                    break
        if own is None or c is None:
            return Blocked(message_id, h.context, "pin", None, None, None, None, (), None)
        head = c.queue[0][0]
        deadline = (
            None if self.policy.fail_after_us is None else head.time_us + self.policy.fail_after_us
        )
        head_held = self._held.get(head.pin)
        if head_held is not None and head_held.batch_hash != head.batch_hash:
            head_held = None
        if head is not own:
            return Blocked(
                message_id,
                h.context,
                "earlier",
                own,
                head,
                None if head_held is None else head_held.message_id,
                None if head_held is not None else head.batch_hash,
                tuple(sorted(head_held.missing)) if head_held is not None else (),
                deadline,
            )
        return Blocked(
            message_id,
            h.context,
            "blobs",
            own,
            head,
            message_id,
            None,
            tuple(sorted(h.missing)),
            deadline,
        )

    def take_new_unknown(self) -> list[PinRef]:
        """Pins kept as unknown since the last call (the caller persists them apart from
        ``snapshot(with_unknown=False)``, so a snapshot stays small)."""
        out, self._new_unknown = self._new_unknown, []
        return out

    def oldest_unknown_seqno(self) -> int | None:
        return min((r.seqno for r in self._unknown.values()), default=None)

    def _trim_unknown(self) -> None:
        excess = len(self._unknown) - self.policy.max_unknown
        if excess > 0:  # insertion order is ledger order: forget the oldest
            for p in list(itertools.islice(self._unknown, excess)):
                del self._unknown[p]

    def take_attributed(self) -> list[tuple[PinRef, bytes]]:
        """Pins placed in a context since the last call (to record their context)."""
        out, self._attributed = self._attributed, []
        return out

    def held_ids(self) -> list[str]:
        return sorted(self._held_by_id)

    def pending_heads(self) -> int:
        return sum(1 for c in self._contexts.values() if c.queue)

    def knows_context(self, context: bytes) -> bool:
        return context in self._contexts

    def next_deadline_us(self) -> int | None:
        """The earliest ledger time at which a blocked head fails (None: none will)."""
        if self.policy.fail_after_us is None:
            return None
        heads = [c.queue[0][0].time_us for c in self._contexts.values() if c.queue]
        return min(heads) + self.policy.fail_after_us if heads else None

    # -- internals ------------------------------------------------------------------------

    def _register(self, context: bytes, candidates: tuple[str, ...]) -> list[Released]:
        """Know ``context``; answers the failures of held messages whose pins were refused."""
        out: list[Released] = []
        c = self._contexts[context] = _Context(candidates, {}, {}, [])
        for a in candidates:
            c.high[a] = 0
            c.seen[a] = set()
            for n in range(self.policy.window):
                self._expected[pin_of(context, a, n)] = (context, a, n)
        # Pins of this context may have been committed before we knew it.
        w = self.policy.window
        while self._unknown:
            hits = []
            for a in candidates:
                for n in range(max(0, c.high[a] - w), c.high[a] + w):
                    p = pin_of(context, a, n)
                    if p in self._unknown and self._expected.get(p) == (context, a, n):
                        hits.append(self._unknown[p])
            matched = False
            for ref in sorted(hits):  # ledger order: a pin's first placement or refusal wins
                if ref.refusal:
                    done = self._refuse(ref)
                    if done is not None:
                        out.extend(done)
                        del self._unknown[ref.pin]
                        matched = True
                elif self._attribute(ref) is not None:
                    del self._unknown[ref.pin]
                    matched = True
            if not matched:
                break
        return out

    def _attribute(self, ref: PinRef) -> bytes | None:
        hit = self._expected.get(ref.pin)
        if hit is None:
            return None
        context, author, nonce = hit
        if ref.submitter != author:
            return None  # only the node a pin names may take its place
        c = self._contexts[context]
        self._take_nonce(c, context, author, nonce, ref.pin)
        bisect.insort(c.queue, (ref, author, nonce), key=lambda e: (e[0].seqno, e[0].index))
        self._attributed.append((ref, context))
        return context

    def _refuse(self, ref: PinRef) -> list[Released] | None:
        """Take a refused pin's place; None if this node cannot attribute it (yet)."""
        hit = self._expected.get(ref.pin)
        if hit is None:
            return None
        context, author, nonce = hit
        if ref.submitter != author:
            return None  # another node's refusal says nothing about this pin
        self._take_nonce(self._contexts[context], context, author, nonce, ref.pin)
        h = self._held.get(ref.pin)
        if h is None:
            self._refused[ref.pin] = ref
            return []
        self._drop_held(h)
        return [Released("failed", context, h.message_id, ref, ref.refusal)]

    def _take_nonce(self, c: _Context, context: bytes, author: str, nonce: int, pin: bytes) -> None:
        """``pin`` (``author``'s ``nonce`` in ``context``) took its place: slide the window."""
        del self._expected[pin]
        c.seen[author].add(nonce)
        w = self.policy.window
        high = c.high[author]
        if nonce + 1 > high:
            for n in range(high + w, nonce + 1 + w):
                self._expected[pin_of(context, author, n)] = (context, author, n)
            for n in range(max(0, high - w), max(0, nonce + 1 - w)):
                if n not in c.seen[author]:
                    self._expected.pop(pin_of(context, author, n), None)
            c.high[author] = high = nonce + 1
            c.seen[author] = {n for n in c.seen[author] if n >= high - w}

    def _release(self, context: bytes) -> list[Released]:
        c = self._contexts[context]
        out: list[Released] = []
        limit = self.policy.fail_after_us
        while c.queue:
            ref = c.queue[0][0]
            h = self._held.get(ref.pin)
            if h is not None and h.batch_hash != ref.batch_hash:
                h = None
            if h is not None and h.pinned_by != ref.source:
                c.queue.pop(0)
                self._drop_held(h)
                why = f"pinned by a {ref.source} transaction, bound to {h.pinned_by}"
                out.append(Released("failed", context, h.message_id, ref, why))
            elif h is not None and not h.missing:
                c.queue.pop(0)
                self._drop_held(h)
                out.append(Released("confirmed", context, h.message_id, ref))
            elif limit is not None and self.ledger_time_us >= ref.time_us + limit:
                c.queue.pop(0)
                if h is None:
                    self._failed[ref.pin] = ref
                    out.append(Released("failed", context, None, ref, "batch did not arrive"))
                else:
                    self._drop_held(h)
                    out.append(
                        Released("failed", context, h.message_id, ref, "blobs did not arrive")
                    )
            else:
                break
        return out

    def _drop_held(self, h: Held) -> None:
        del self._held[h.pin]
        self._held_by_id.pop(h.message_id, None)
        for b in h.missing:
            waiters = self._blob_waiters.get(b)
            if waiters is not None:
                waiters.discard(h.pin)
                if not waiters:
                    del self._blob_waiters[b]
        left = self._batches.get(h.batch_hash, 1) - 1
        if left > 0:
            self._batches[h.batch_hash] = left
        else:
            self._batches.pop(h.batch_hash, None)

    def _advance_time(self, time_us: int) -> list[Released]:
        if time_us <= self.ledger_time_us:
            return []
        self.ledger_time_us = time_us
        horizon = time_us - self.policy.unknown_retention_us
        if self._unknown:
            oldest = min(r.time_us for r in self._unknown.values())
            if oldest < horizon:
                self._unknown = {p: r for p, r in self._unknown.items() if r.time_us >= horizon}
        if self._failed:
            self._failed = {p: r for p, r in self._failed.items() if r.time_us >= horizon}
        if self._refused:
            self._refused = {p: r for p, r in self._refused.items() if r.time_us >= horizon}
        if self.policy.fail_after_us is None:
            return []
        out: list[Released] = []
        for ctx in sorted(self._contexts):
            c = self._contexts[ctx]
            if c.queue and c.queue[0][0].time_us + self.policy.fail_after_us <= time_us:
                out.extend(self._release(ctx))
        return out

    # -- persistence ----------------------------------------------------------------------

    def snapshot(self, *, with_unknown: bool = True) -> bytes:
        """Canonical bytes of the whole state (unknown pins optional: the caller may keep
        them in its own table and pass them back to ``restore``)."""
        contexts = []
        for ctx in sorted(self._contexts):
            c = self._contexts[ctx]
            contexts.append(
                [
                    ctx,
                    list(c.candidates),
                    [[a, c.high[a], sorted(c.seen[a])] for a in sorted(c.high)],
                    [[*ref.to_record(), a, n] for ref, a, n in c.queue],
                ]
            )
        held = []
        for h in sorted(self._held.values(), key=lambda x: x.pin):
            rec: list[object] = [
                h.message_id,
                h.context,
                h.author,
                h.nonce,
                h.pin,
                h.batch_hash,
                sorted(h.missing),
                h.created_us,
            ]
            if h.pinned_by != "mp":
                rec.append(h.pinned_by)
            held.append(rec)
        unknown = [r.to_record() for r in sorted(self._unknown.values())] if with_unknown else []
        failed = [r.to_record() for r in sorted(self._failed.values())]
        refused = [r.to_record() for r in sorted(self._refused.values())]
        return encode(
            Record(
                _SNAP,
                self.processed_seqno,
                self.ledger_time_us,
                contexts,
                held,
                unknown,
                failed,
                refused,
            )
        )

    @classmethod
    def restore(
        cls,
        data: bytes,
        policy: FailurePolicy | None = None,
        unknown: Iterable[PinRef] = (),
    ) -> Aggregator:
        rec = decode(data)
        if not isinstance(rec, Record) or rec.label != _SNAP or len(rec.fields) not in (6, 7):
            raise ValueError("not an aggregator snapshot")
        processed, now, contexts, held, unknown_recs, failed = rec.fields[:6]
        refused = rec.fields[6] if len(rec.fields) == 7 else []
        agg = cls(policy)
        agg.processed_seqno = processed
        agg.ledger_time_us = now
        w = agg.policy.window
        for ctx, cands, authors, queue in contexts:
            c = agg._contexts[ctx] = _Context(tuple(cands), {}, {}, [])
            for a, high, seen in authors:
                c.high[a] = high
                c.seen[a] = set(seen)
                for n in range(max(0, high - w), high + w):
                    if n not in c.seen[a]:
                        agg._expected[pin_of(ctx, a, n)] = (ctx, a, n)
            for q in queue:
                c.queue.append((PinRef.from_record(q[:-2]), q[-2], q[-1]))
        for entry in held:
            mid, ctx, author, nonce, pin, bh, missing, created = entry[:8]
            pinned_by = entry[8] if len(entry) > 8 else "mp"
            h = Held(mid, ctx, author, nonce, pin, bh, set(missing), created, pinned_by)
            agg._held[pin] = h
            agg._held_by_id[mid] = pin
            agg._batches[bh] = agg._batches.get(bh, 0) + 1
            for b in h.missing:
                agg._blob_waiters.setdefault(b, set()).add(pin)
        horizon = agg.ledger_time_us - agg.policy.unknown_retention_us
        for r in sorted([*map(PinRef.from_record, unknown_recs), *unknown]):
            if r.time_us < horizon:
                continue
            if r.pin not in agg._expected:
                agg._unknown.setdefault(r.pin, r)
            elif r.refusal:
                # a refusal whose message is held here would have failed it already
                if r.pin in agg._held or agg._refuse(r) is None:
                    agg._unknown.setdefault(r.pin, r)
            else:
                ctx = agg._attribute(r)
                if ctx is None:
                    agg._unknown.setdefault(r.pin, r)
        agg._trim_unknown()
        for r in failed:
            ref = PinRef.from_record(r)
            agg._failed[ref.pin] = ref
        for r in refused:
            ref = PinRef.from_record(r)
            agg._refused[ref.pin] = ref
        agg._attributed.clear()
        agg._new_unknown.clear()
        return agg
