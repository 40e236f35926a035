"""One CapTP session over one connection: the thin asyncio driver around ``Session``.

It reads bytes from a ``Connection``, splits them with a framer, feeds the session,
acts on its events (deliveries to local objects, listens, accessors) and writes the
session's messages. Writes are coalesced: any number of sends in one event-loop turn
become one ``write`` (scheduled with ``call_soon``), and the reader drains once per
received chunk. It also implements ``SessionHooks``: imports become ``RemoteRef``s
(one per position, held weakly; when one is collected its wire count is released
with the next batch of ``op:gc-exports``), and outgoing references are described to
the session (our objects are exported, the peer's own references go back as
``desc:export``, references to third parties become handoff certificates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from charter.codec.syrup import Symbol, SyrupError
from charter.ocapn.captp.messages import (
    Answer,
    Dialect,
    Export,
    SelectKind,
    SigEnvelope,
    Target,
    error_record,
)
from charter.ocapn.captp.session import (
    Aborted,
    AnswersReleased,
    Delivered,
    Established,
    Event,
    ExportObject,
    ExportPromise,
    ExportsReleased,
    ListenRequested,
    Outgoing,
    Raw,
    Selected,
    Session,
    ToAnswer,
    ToImport,
)
from charter.ocapn.framing import Framer, FramingError
from charter.ocapn.locator import PeerLocation
from charter.ocapn.netlayer.base import Connection, NetlayerError
from charter.ocapn.runtime.errors import RuntimeClosedError
from charter.ocapn.runtime.invoke import invoke_local, select_value
from charter.ocapn.runtime.refs import (
    BREAK,
    FULFILL,
    Promise,
    RemoteRef,
    Resolver,
    WireCount,
    call_local,
    error_reason,
    send,
)
from charter.ocapn.runtime.streams import DecoderFramer

if TYPE_CHECKING:
    from charter.ocapn.runtime.runtime import Runtime

log = logging.getLogger(__name__)

_DATA = (int, str, bytes, bool, float, Symbol, type(None), list, tuple, dict, set, frozenset)


class PeerSession:
    """A live CapTP session with one peer (see the module docstring)."""

    def __init__(
        self,
        runtime: Runtime,
        conn: Connection,
        framer: Framer | DecoderFramer,
        location: PeerLocation,
        *,
        outbound: bool,
        expected: PeerLocation | None = None,
        dialect: Dialect | None = None,
    ) -> None:
        self.runtime = runtime
        self.conn = conn
        self.framer = framer
        self.outbound = outbound
        self.expected = expected
        self.bootstrap: Any = runtime._make_bootstrap(self)
        self.session = Session(location, self, self.bootstrap, dialect=dialect)
        self.ready: asyncio.Future[PeerSession] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._imports: dict[int, _ImportRef] = {}
        self._released: list[_ImportRef] = []
        self._questions: dict[int, Promise] = {}
        # imported promises not settled yet (broken if the session ends); weak, so GC works
        self._waiting: weakref.WeakSet[Promise] = weakref.WeakSet()
        self._flush_scheduled = False
        self._bootstrap_ref: RemoteRef | None = None
        self.retired = False
        self.name = expected.designator if expected is not None else (conn.peer_designator or "?")
        self.transport = expected.transport if expected is not None else ""

    # -- identity ---------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.session.is_open and not self.conn.is_closing

    @property
    def _pending_imports(self) -> bool:
        return any(not p.settled for p in self._waiting)

    @property
    def in_use(self) -> bool:
        """Handed out to callers, or carrying state for either side."""
        ready = self.ready
        if (
            ready.done()
            and not ready.cancelled()
            and ready.exception() is None
            and ready.result() is self
        ):
            return True
        s = self.session
        if self._questions or self._pending_imports or s.export_count or s.answer_count:
            return True
        return any(pos != 0 and wr() is not None for pos, wr in self._imports.items())

    @property
    def lost_crossing(self) -> bool:
        """The peer aborted this session because it lost a crossed-hellos race."""
        return self.session.abort_reason == "crossed hellos"

    def retire(self) -> None:
        """Lost a crossed-hellos race: take no new work; the dialer closes it when idle."""
        self.retired = True
        self._close_if_idle()

    def _close_if_idle(self) -> None:
        if not self.outbound or not self.session.is_open:
            return
        s = self.session
        if self._questions or self._pending_imports or s.export_count or s.answer_count:
            return
        if any(pos != 0 and wr() is not None for pos, wr in self._imports.items()):
            return
        self.abort("crossed hellos: retired")

    @property
    def peer_location(self) -> PeerLocation | None:
        return self.session.peer_location

    @property
    def initiator_key(self) -> bytes:
        """The session key of the side that dialed (crossed hellos compare these)."""
        if self.outbound:
            return self.session.key.public
        assert self.session.peer_key is not None
        return self.session.peer_key

    @property
    def designator_hint(self) -> str | None:
        if self.expected is not None:
            return self.expected.designator
        if self.session.peer_location is not None:
            return self.session.peer_location.designator
        return self.conn.peer_designator

    def bootstrap_ref(self) -> RemoteRef:
        """The peer's bootstrap object (export position 0)."""
        if self._bootstrap_ref is None:
            self._bootstrap_ref = RemoteRef(self, 0)
        return self._bootstrap_ref

    # -- sending ----------------------------------------------------------------------

    def _check(self) -> None:
        if not self.session.is_open:
            raise RuntimeClosedError(
                f"session with {self.name} is closed: {self.session.abort_reason}"
            )

    def deliver(self, target: Target, args: Sequence[Any]) -> Promise:
        """``op:deliver`` with an answer position and a resolver; the promise pipelines."""
        p = Promise()
        if not self.session.is_open:
            p.break_(error_record(f"session closed: {self.session.abort_reason}"))
            return p
        try:
            pos = self.session.deliver(target, args, answer=True, resolver=Resolver(p))
        except Exception as exc:
            p.break_(error_reason(exc))
            return p
        assert pos is not None
        self._track_question(pos, p)
        self.schedule_flush()
        return p

    def _track_question(self, pos: int, p: Promise) -> None:
        p._pipe = (self, Answer(pos))
        self._questions[pos] = p

        def done(ok: bool, value: Any) -> None:
            if self._questions.pop(pos, None) is not None and self.session.is_open:
                self.session.release_answer(pos)
                self.schedule_flush()

        p.on_settle(done)

    def deliver_only(self, target: Target, args: Sequence[Any]) -> None:
        self._check()
        self.session.deliver(target, args)
        self.schedule_flush()

    def select(self, kind: SelectKind, target: Target, key: str | int) -> Promise:
        """Pipelined accessor: ``op:get``/``op:index``/``op:untag`` then ``op:listen``."""
        p = Promise()
        pos = self.session.select(kind, target, key)
        self.session.listen(Answer(pos), Resolver(p))
        self._track_question(pos, p)
        self.schedule_flush()
        return p

    async def drain(self) -> None:
        """Write what is queued now and wait for the transport to take it (backpressure)."""
        self.flush()
        if not self.conn.is_closing:
            await self.conn.drain()

    def schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write everything queued as one chunk."""
        self._flush_scheduled = False
        if self._released:
            self._release_imports()
        if self.retired:
            self._close_if_idle()
        if not self.session.has_outgoing:
            return
        messages = self.session.take_outgoing()
        if self.conn.is_closing:
            return
        frame = self.framer.frame
        try:
            self.conn.write(b"".join([frame(m) for m in messages]))
        except (NetlayerError, FramingError, OSError) as exc:
            log.debug("write to %s failed: %s", self.name, exc)
            self.abort(f"write failed: {exc}")

    def _release_imports(self) -> None:
        released, self._released = self._released, []
        imports = self._imports
        for wr in released:
            if imports.get(wr.position) is wr:
                del imports[wr.position]
            self.session.release_import(wr.position, wr.count.n)

    def _on_collected(self, wr: _ImportRef) -> None:
        # Runs when an import is collected (in this thread): record; the next flush sends it.
        self._released.append(wr)
        if not self._flush_scheduled and not self._loop.is_closed():
            self._flush_scheduled = True
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon(self.flush)

    def abort(self, reason: str) -> None:
        """Send ``op:abort``, then close the connection after flushing it."""
        if self.session.aborted:
            return
        self.session.abort(reason)
        self._write_final()
        self._ended(reason)

    def _write_final(self) -> None:
        messages = self.session.take_outgoing()
        if messages and not self.conn.is_closing:
            with contextlib.suppress(NetlayerError, FramingError, OSError):
                self.conn.write(b"".join(self.framer.frame(m) for m in messages))
        self.conn.close()

    # -- SessionHooks -----------------------------------------------------------------

    def import_object(self, position: int) -> Any:
        wr = self._imports.get(position)
        ref = wr() if wr is not None else None
        if type(ref) is RemoteRef:
            ref._count.n += 1
            return ref
        ref = RemoteRef(self, position)
        self._imports[position] = _ImportRef(ref, self._on_collected, position, ref._count)
        return ref

    def import_promise(self, position: int) -> Any:
        wr = self._imports.get(position)
        p = wr() if wr is not None else None
        if type(p) is _ImportedPromise:
            p._count.n += 1
            return p
        p = _ImportedPromise()
        p._pipe = (self, Export(position))
        self._imports[position] = _ImportRef(p, self._on_collected, position, p._count)
        self.session.listen(Export(position), Resolver(p))
        self._waiting.add(p)  # settled ones are harmless: breaking them is a no-op
        return p

    def new_answer(self, position: int) -> Any:
        return Promise()

    def handoff_give(self, envelope: SigEnvelope) -> Any:
        return self.runtime._receive_handoff(self, envelope)

    def describe(self, value: Any) -> Outgoing | None:
        if isinstance(value, RemoteRef):
            if value._peer is self:
                return ToImport(value._position)
            return Raw(self.runtime._give_gift(value, self))
        if isinstance(value, Promise):
            p = value._final()
            pipe = p._pipe
            if pipe is not None and pipe[0] is self and p._state == 0:
                target = pipe[1]
                if isinstance(target, Answer):
                    return ToAnswer(target.position)
                return ToImport(target.position)
            return ExportPromise(p)
        if isinstance(value, _DATA):
            return None
        return ExportObject(value)

    # -- events -----------------------------------------------------------------------

    def handle(self, events: list[Event]) -> None:
        for ev in events:
            t = type(ev)
            if t is Delivered:
                assert isinstance(ev, Delivered)
                self._on_delivered(ev)
            elif t is ListenRequested:
                assert isinstance(ev, ListenRequested)
                self._on_listen(ev)
            elif t is Selected:
                assert isinstance(ev, Selected)
                self._on_selected(ev)
            elif t is Established:
                self.runtime._on_established(self)
            elif t is Aborted:
                assert isinstance(ev, Aborted)
                self._ended(ev.reason)
            elif (t is ExportsReleased or t is AnswersReleased) and self.retired:
                # the session dropped its strong references; a retired session may now be idle
                self.schedule_flush()

    def _on_delivered(self, ev: Delivered) -> None:
        target = ev.target
        if ev.answer is None and ev.resolver is None:
            if isinstance(target, Promise):
                target.send_only(*ev.args)
                return
            try:
                result = invoke_local(target, ev.args)
            except Exception as exc:
                log.debug("fire-and-forget to %r failed: %r", target, exc)
                return
            if asyncio.iscoroutine(result):
                call_local(lambda: result, ())  # run it; nobody waits for the outcome
            return
        result = send(target, ev.args)
        if ev.answer is not None:
            ev.answer.resolve(result)
        if ev.resolver is not None:
            resolver = ev.resolver
            result.on_settle(lambda ok, v: self._notify(resolver, ok, v))

    def _notify(self, listener: Any, ok: bool, value: Any) -> None:
        if not self.session.is_open:
            return
        try:
            if isinstance(listener, RemoteRef) and listener._peer is self:
                self.session.deliver(Export(listener._position), [FULFILL if ok else BREAK, value])
                self.schedule_flush()
            else:
                send(listener, (FULFILL if ok else BREAK, value))
        except Exception as exc:
            # The value could not be passed: tell the listener why instead.
            if isinstance(listener, RemoteRef) and self.session.is_open:
                self.session.deliver(Export(listener._position), [BREAK, error_reason(exc)])
                self.schedule_flush()

    def _on_listen(self, ev: ListenRequested) -> None:
        listener = ev.listener
        if isinstance(ev.target, Promise):
            ev.target.on_settle(lambda ok, v: self._notify(listener, ok, v))
        else:
            self._notify(listener, True, ev.target)

    def _on_selected(self, ev: Selected) -> None:
        answer: Promise = ev.answer
        source = ev.target if isinstance(ev.target, Promise) else Promise.fulfilled(ev.target)
        kind, key = ev.kind, ev.key

        def done(ok: bool, value: Any) -> None:
            if not ok:
                answer.break_(value)
                return
            try:
                answer.resolve(select_value(kind, value, key))
            except Exception as exc:
                answer.break_(error_reason(exc))

        source.on_settle(done)

    def _ended(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        broken = error_record(f"session with {self.name} ended: {reason}")
        questions = list(self._questions.values())
        self._questions.clear()
        waiting = list(self._waiting)
        self._waiting = weakref.WeakSet()
        for p in questions + waiting:
            p.break_(broken)
        if not self.ready.done():
            self.ready.set_exception(RuntimeClosedError(f"session ended: {reason}"))
            self.ready.exception()  # mark retrieved: a dial that lost may have no waiter
        self.runtime._on_ended(self)

    # -- the read loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Handshake, then process input until the session ends; always closes."""
        session = self.session
        try:
            session.start()
            self.flush()
            while not session.aborted:
                data = await self.conn.read()
                if not data:
                    self.handle(session.peer_closed())
                    break
                try:
                    values = self.framer.feed(data)
                except (FramingError, SyrupError) as exc:
                    self.handle([session.fail(f"framing: {exc.message}")])
                    break
                for value in values:
                    self.handle(session.receive(value))
                    if session.aborted:
                        break
                if session.aborted:
                    break
                self.flush()
                await self.conn.drain()
        except (NetlayerError, OSError) as exc:
            self.handle(session.peer_closed() if not session.aborted else [])
            log.debug("connection to %s failed: %s", self.name, exc)
        finally:
            if not session.aborted:
                session.abort("session closed")
            self._write_final()
            self._ended(session.abort_reason or "closed")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.conn.wait_closed(), 5.0)


class _ImportRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to an import that remembers its position and wire count."""

    __slots__ = ("count", "position")

    def __new__(
        cls, obj: Any, callback: Callable[[_ImportRef], None], position: int, count: WireCount
    ) -> _ImportRef:
        return super().__new__(cls, obj, callback)

    def __init__(
        self, obj: Any, callback: Callable[[_ImportRef], None], position: int, count: WireCount
    ) -> None:
        self.position = position
        self.count = count


class _ImportedPromise(Promise):
    """A promise the peer exported; settled through the ``op:listen`` we send."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        super().__init__()
        self._count = WireCount()
