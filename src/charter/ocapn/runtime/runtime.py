"""The capability runtime: local objects, sessions per peer, sturdyrefs and handoffs.

``Runtime`` holds one or more netlayers, serves on them, and keeps at most one live
CapTP session per peer (keyed by transport and designator). When two peers dial
each other at once ("crossed hellos") both keep the connection whose *dialing*
side has the higher public ID (hash of its session key), deciding as soon as both
hellos are known. A losing session nobody has used is aborted at once. A dial may
complete before the crossing one is even seen, so the loser may already be in
use: it is then retired (no new work goes to it) and its dialer aborts it once
distributed GC shows it idle. A second connection from a peer that already has a
session with us is aborted.

Each session gets its own bootstrap object (export position 0) with ``fetch`` (by
swiss number), ``deposit-gift`` and ``withdraw-gift``. Third-party handoffs:

* gifter: sending a reference imported from session G-E over session G-R deposits
  it at E's bootstrap under a fresh gift id and sends R a ``desc:handoff-give``
  signed with our G-E session key;
* receiver: a received handoff-give becomes a promise; we connect to the exporter
  (reusing a session) and withdraw with a ``desc:handoff-receive`` signed with our
  G-R session key and a fresh handoff-count;
* exporter: ``withdraw-gift`` checks both signatures, that the certificate names
  this session and its peer, and that the handoff-count was never used on this
  session; the gift may be deposited before or after the withdraw arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from charter.codec.syrup import Record, Symbol, encode
from charter.ocapn.captp import crypto
from charter.ocapn.captp.errors import ProtocolError
from charter.ocapn.captp.messages import (
    Dialect,
    Export,
    HandoffGive,
    HandoffReceive,
    SigEnvelope,
    error_record,
    gift_id,
)
from charter.ocapn.framing import DEFAULT_MAX_MESSAGE_SIZE, UNFRAMED
from charter.ocapn.locator import PeerLocation, SturdyRef, parse_uri
from charter.ocapn.netlayer.base import Connection, Netlayer, NetlayerError
from charter.ocapn.runtime.errors import HandoffError, PromiseBrokenError, RuntimeClosedError
from charter.ocapn.runtime.peer import PeerSession
from charter.ocapn.runtime.refs import Promise, RemoteRef, error_reason
from charter.ocapn.runtime.streams import stream_framer

log = logging.getLogger(__name__)

DEPOSIT_GIFT = Symbol("deposit-gift")
WITHDRAW_GIFT = Symbol("withdraw-gift")
FETCH = Symbol("fetch")

PeerKey = tuple[str, str]

#: Gifts one gifter session may leave waiting at once (a hostile gifter cannot flood us).
MAX_PENDING_GIFTS = 10_000


class Bootstrap:
    """The object a session exports at position 0 (methods chosen by a Symbol)."""

    def __init__(self, runtime: Runtime, peer: PeerSession) -> None:
        self._runtime = runtime
        self._peer = peer

    def fetch(self, swiss: Any) -> Any:
        if not isinstance(swiss, bytes):
            raise LookupError("fetch takes a swiss number (bytes)")
        try:
            return self._runtime._registry[swiss]
        except KeyError:
            raise LookupError("no object is registered under that swiss number") from None

    def deposit_gift(self, gid: Any, value: Any) -> None:
        self._runtime._deposit_gift(self._peer, gid, value)

    def withdraw_gift(self, envelope: Any) -> Any:
        return self._runtime._withdraw_gift(self._peer, envelope)


class Runtime:
    """A vat on asyncio: export objects, connect to peers, call and pipeline."""

    def __init__(
        self,
        netlayers: Sequence[Netlayer] = (),
        *,
        framing: str = UNFRAMED,
        dialect: Dialect | None = None,
        handshake_timeout: float = 10.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.netlayers = list(netlayers)
        self.framing = framing
        self.dialect = dialect
        self.handshake_timeout = handshake_timeout
        self.max_message_size = max_message_size
        self._registry: dict[bytes, Any] = {}
        self._peers: set[PeerSession] = set()
        self._sessions: dict[PeerKey, PeerSession] = {}
        self._by_session_id: dict[bytes, PeerSession] = {}
        self._dialing: dict[PeerKey, asyncio.Task[PeerSession]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gifts: dict[tuple[bytes, int | bytes], Any] = {}
        self._gift_waiters: dict[tuple[bytes, int | bytes], list[Promise]] = {}
        self._gift_counts: dict[bytes, int] = {}
        self._started = False
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start accepting on every netlayer."""
        if self._started:
            return
        self._started = True
        for nl in self.netlayers:
            await nl.serve(self._accept_handler(nl))

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Abort every session, stop the netlayers and wait for the session tasks."""
        if self._closed:
            return
        self._closed = True
        for peer in list(self._peers):
            peer.abort("runtime shutting down")
        for dial in list(self._dialing.values()):
            dial.cancel()
        for nl in self.netlayers:
            with contextlib.suppress(NetlayerError, OSError):
                await nl.close()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    # -- identity and sturdyrefs ------------------------------------------------------

    def location(self, transport: str | None = None) -> PeerLocation:
        """Where peers reach us (over ``transport``, default: the first netlayer)."""
        for nl in self.netlayers:
            if transport is None or nl.name == transport:
                return PeerLocation(nl.designator, nl.name, nl.hints or None)
        raise RuntimeClosedError(f"no netlayer for transport {transport!r}")

    def _is_self(self, loc: PeerLocation) -> bool:
        return any(
            nl.name == loc.transport and nl.designator == loc.designator for nl in self.netlayers
        )

    def register(self, obj: Any, swiss: bytes | None = None) -> SturdyRef:
        """Make ``obj`` fetchable by swiss number; returns its sturdyref."""
        if swiss is None:
            swiss = secrets.token_urlsafe(24).encode("ascii")
        self._registry[swiss] = obj
        return SturdyRef(self.location(), swiss)

    def unregister(self, swiss: bytes) -> None:
        self._registry.pop(swiss, None)

    async def enliven(self, sturdyref: SturdyRef | str) -> Any:
        """Connect to the sturdyref's peer (reusing a session) and fetch the object."""
        ref = sturdyref if isinstance(sturdyref, SturdyRef) else _sturdyref_from_uri(sturdyref)
        if self._is_self(ref.peer):
            try:
                return self._registry[ref.swiss_num]
            except KeyError:
                raise LookupError("no object is registered under that swiss number") from None
        peer = await self.connect(ref.peer)
        try:
            return await peer.bootstrap_ref().send(FETCH, ref.swiss_num)
        except PromiseBrokenError:
            if not peer.lost_crossing:
                raise
        # The peer aborted our fresh dial in a crossed-hellos race before reading the
        # fetch; fetching is idempotent, so ask again on the surviving session.
        peer = await self.connect(ref.peer)
        return await peer.bootstrap_ref().send(FETCH, ref.swiss_num)

    # -- sessions ---------------------------------------------------------------------

    @property
    def sessions(self) -> list[PeerSession]:
        """The live, established session per peer."""
        return [p for p in self._sessions.values() if p.usable]

    async def connect(self, peer: PeerLocation) -> PeerSession:
        """The session with ``peer``: an existing one, a dial in progress, or a new dial."""
        if self._closed:
            raise RuntimeClosedError("runtime is closed")
        key = peer.key
        existing = self._sessions.get(key)
        if existing is not None and existing.usable:
            return existing
        dial = self._dialing.get(key)
        if dial is None:
            # a handshake with this peer may be in flight (e.g. it is dialing us)
            for p in list(self._peers):
                if p.retired or p.closed.is_set() or p.ready.done():
                    continue
                if p.transport == key[0] and p.designator_hint == key[1]:
                    with contextlib.suppress(RuntimeClosedError, TimeoutError):
                        async with asyncio.timeout(self.handshake_timeout):
                            found = await asyncio.shield(p.ready)
                        if found.usable and not found.retired:
                            return found
        dial = self._dialing.get(key)
        if dial is None:
            dial = asyncio.get_running_loop().create_task(self._dial(peer))
            self._dialing[key] = dial

            def forget(t: asyncio.Task[PeerSession]) -> None:
                if self._dialing.get(key) is t:
                    del self._dialing[key]

            dial.add_done_callback(forget)
        ps = await asyncio.shield(dial)
        if ps.retired or not ps.usable:
            # it lost a crossed-hellos race after the dial returned: use the winner
            winner = self._sessions.get(key)
            if winner is None or not winner.usable:
                raise RuntimeClosedError(f"no session with {peer.designator}")
            return winner
        return ps

    def _netlayer_for(self, transport: str) -> Netlayer:
        for nl in self.netlayers:
            if nl.name == transport:
                return nl
        raise NetlayerError(f"no netlayer for transport {transport!r}")

    async def _dial(self, peer: PeerLocation) -> PeerSession:
        nl = self._netlayer_for(peer.transport)
        async with asyncio.timeout(self.handshake_timeout):
            conn = await nl.connect(peer.designator, peer.hints_dict())
            ps = self._start_peer(conn, nl, outbound=True, expected=peer)
            task = asyncio.get_running_loop().create_task(ps.run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return await asyncio.shield(ps.ready)

    def _start_peer(
        self,
        conn: Connection,
        nl: Netlayer,
        *,
        outbound: bool,
        expected: PeerLocation | None = None,
    ) -> PeerSession:
        framer = stream_framer(self.framing, self.max_message_size)
        location = PeerLocation(nl.designator, nl.name, nl.hints or None)
        ps = PeerSession(
            self, conn, framer, location, outbound=outbound, expected=expected, dialect=self.dialect
        )
        ps.transport = nl.name
        self._peers.add(ps)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.handshake_timeout, self._handshake_timeout, ps)
        ps.ready.add_done_callback(lambda _: timer.cancel())
        return ps

    def _handshake_timeout(self, ps: PeerSession) -> None:
        if not ps.session.is_open:
            ps.abort("handshake timed out")

    def _accept_handler(self, nl: Netlayer) -> Any:
        async def accept(conn: Connection) -> None:
            if self._closed:
                conn.close()
                return
            ps = self._start_peer(conn, nl, outbound=False)
            await ps.run()

        return accept

    def _make_bootstrap(self, peer: PeerSession) -> Bootstrap:
        return Bootstrap(self, peer)

    def _on_established(self, ps: PeerSession) -> None:
        loc = ps.session.peer_location
        assert loc is not None
        verified = ps.conn.peer_designator
        if verified is not None and verified != loc.designator:
            ps.abort("peer location does not match the authenticated designator")
            return
        if ps.expected is not None and not ps.expected.same_peer(loc):
            ps.abort("peer is not the one dialed")
            return
        ps.name = loc.designator
        key = (ps.transport, loc.designator)
        current = self._sessions.get(key)
        if (
            not ps.outbound
            and current is not None
            and current is not ps
            and not current.outbound
            and current.session.is_open
        ):
            # the peer dialed again while its first session is alive: not a crossing
            ps.abort("a session with this peer already exists")
            return
        self._by_session_id[ps.session.session_id] = ps
        self._decide(key)

    def _decide(self, key: PeerKey) -> None:
        """Keep one session per peer: the one whose dialer has the higher public ID.

        A candidate's dialer key is known for our own dials from the start and for the
        peer's dials once its ``op:start-session`` arrived, so a crossing is decided as
        soon as both hellos are known (both sides compute the same winner). A losing
        session nobody used yet is aborted at once; one already in use is retired.
        """
        cands = [
            p
            for p in self._peers
            if not p.closed.is_set()
            and p.transport == key[0]
            and p.designator_hint == key[1]
            and (p.outbound or p.session.is_open)
        ]
        if not cands:
            return
        winner = max(cands, key=lambda p: crypto.public_id(p.initiator_key))
        for p in cands:
            if p is winner:
                continue
            if p.in_use:
                p.retire()
            else:
                _chain_ready(p, winner)
                p.abort("crossed hellos")
        if winner.session.is_open:
            self._sessions[key] = winner
            for p in cands:
                if not p.ready.done():
                    p.ready.set_result(winner)

    def _on_ended(self, ps: PeerSession) -> None:
        self._peers.discard(ps)
        loc = ps.session.peer_location
        if loc is not None:
            key = (ps.transport, loc.designator)
            if self._sessions.get(key) is ps:
                del self._sessions[key]
            if ps.session.peer_key is not None:
                sid = ps.session.session_id
                if self._by_session_id.get(sid) is ps:
                    del self._by_session_id[sid]
                self._drop_gifts(sid)
        hint = ps.designator_hint
        if hint is not None and not self._closed:
            self._decide((ps.transport, hint))

    # -- handoffs ---------------------------------------------------------------------

    def _give_gift(self, ref: RemoteRef, receiver: PeerSession) -> Record:
        """Gifter: deposit ``ref`` at its exporter and return the signed handoff-give."""
        ge = ref.peer.session
        if not ge.is_open or receiver.session.peer_key is None:
            raise RuntimeClosedError("cannot hand off over a closed session")
        assert ge.peer_location is not None
        gid = ge.next_gift_id()
        give = HandoffGive(
            receiver.session.peer_key, ge.peer_location, ge.session_id, ge.local_public_id, gid
        ).to_record()
        signature = ge.key.sign(encode(give))
        ref.peer.deliver_only(Export(0), [DEPOSIT_GIFT, gid, ref])
        return SigEnvelope(give, signature).to_record()

    def _receive_handoff(self, gr: PeerSession, envelope: SigEnvelope) -> Promise:
        """Receiver: a promise for the gift, withdrawn from the exporter."""
        give = HandoffGive.parse(envelope.signed)
        p = Promise()
        if give.receiver_key != gr.session.key.public:
            p.break_(error_record("handoff-give names another receiver"))
        elif self._is_self(give.exporter_location):
            p.break_(error_record("handoff-give names this peer as the exporter"))
        else:
            task = asyncio.get_running_loop().create_task(self._withdraw(gr, envelope, give, p))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return p

    async def _withdraw(
        self, gr: PeerSession, envelope: SigEnvelope, give: HandoffGive, p: Promise
    ) -> None:
        try:
            er = await self.connect(give.exporter_location)
            es = er.session
            receive = HandoffReceive(
                es.session_id, es.local_public_id, es.next_handoff_count(), envelope
            ).to_record()
            signature = gr.session.key.sign(encode(receive))
            p.resolve(er.bootstrap_ref().send(WITHDRAW_GIFT, SigEnvelope(receive, signature)))
        except Exception as exc:
            p.break_(error_reason(exc))

    def _deposit_gift(self, ge: PeerSession, gid: Any, value: Any) -> None:
        """Exporter: the gifter left ``value`` under ``gid`` on session G-E."""
        try:
            gid = gift_id(gid)
        except ProtocolError as exc:
            raise HandoffError(exc.message) from exc
        sid = ge.session.session_id
        key = (sid, gid)
        waiters = self._gift_waiters.get(key)
        if waiters:
            waiter = waiters.pop(0)
            if not waiters:
                del self._gift_waiters[key]
            waiter.resolve(value)
            return
        pending = self._gift_counts.get(sid, 0)
        if key not in self._gifts:
            if pending >= MAX_PENDING_GIFTS:
                raise HandoffError("too many gifts waiting from this session")
            self._gift_counts[sid] = pending + 1
        self._gifts[key] = value

    def _withdraw_gift(self, er: PeerSession, envelope: Any) -> Any:
        """Exporter: verify a handoff-receive and return (a promise for) the gift."""
        if not isinstance(envelope, SigEnvelope):
            raise HandoffError("withdraw-gift takes a signed desc:handoff-receive")
        try:
            receive = HandoffReceive.parse(envelope.signed)
            give = HandoffGive.parse(receive.signed_give.signed)
        except ProtocolError as exc:
            raise HandoffError(exc.message) from exc
        ge = self._by_session_id.get(give.session)
        if ge is None or ge.session.peer_key is None:
            raise HandoffError("handoff-give names no session this exporter has")
        if give.gifter_side != ge.session.peer_public_id:
            raise HandoffError("handoff-give gifter-side is not the gifter of that session")
        if not crypto.verify(
            ge.session.peer_key, receive.signed_give.signature, encode(receive.signed_give.signed)
        ):
            raise HandoffError("handoff-give signature does not verify")
        if not crypto.verify(give.receiver_key, envelope.signature, encode(envelope.signed)):
            raise HandoffError("handoff-receive signature does not verify")
        es = er.session
        if (
            receive.receiving_session != es.session_id
            or receive.receiving_side != es.peer_public_id
        ):
            raise HandoffError("handoff-receive names another session")
        if not es.claim_handoff_count(receive.handoff_count):
            raise HandoffError("handoff-count was already used in this session (replay)")
        key = (give.session, give.gift_id)
        if key in self._gifts:
            self._gift_counts[give.session] -= 1
            return self._gifts.pop(key)
        waiter = Promise()
        self._gift_waiters.setdefault(key, []).append(waiter)
        return waiter

    def _drop_gifts(self, sid: bytes) -> None:
        self._gift_counts.pop(sid, None)
        for key in [k for k in self._gifts if k[0] == sid]:
            del self._gifts[key]
        for key in [k for k in self._gift_waiters if k[0] == sid]:
            for w in self._gift_waiters.pop(key):
                w.break_(error_record("the gifter's session ended before the gift arrived"))


def _chain_ready(loser: PeerSession, winner: PeerSession) -> None:
    """Whoever waits for ``loser`` gets ``winner`` once it is ready."""
    if loser.ready.done():
        return
    fut = loser.ready
    loser.ready = asyncio.get_running_loop().create_future()  # the abort fails this one

    def copy(done: asyncio.Future[PeerSession]) -> None:
        if fut.done():
            return
        if done.cancelled() or done.exception() is not None:
            fut.set_exception(RuntimeClosedError("the winning session of a crossing failed"))
        else:
            fut.set_result(done.result())

    winner.ready.add_done_callback(copy)


def _sturdyref_from_uri(uri: str) -> SturdyRef:
    parsed = parse_uri(uri)
    if not isinstance(parsed, SturdyRef):
        raise LookupError("the URI names a peer, not a sturdyref")
    return parsed
