"""Promises and far references: the values a runtime user holds and sends to.

A ``Promise`` is an eventual value. It settles once: fulfilled with a value, broken
with a reason, or forwarded to another promise (whose settlement it then shares).
Messages sent to a pending promise are *pipelined*: when the promise stands for an
answer on a peer (``_pipe``), they go to that peer at once as ``op:deliver`` to
``desc:answer``; otherwise they queue and follow the promise when it settles.

A ``RemoteRef`` is a reference to an object another peer exports. Calling it, or
``send``, returns a promise; ``send_only`` is fire-and-forget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from charter.codec.syrup import Symbol
from charter.ocapn.captp.messages import Answer, Export, SelectKind, Target, error_record
from charter.ocapn.runtime.errors import PromiseBrokenError
from charter.ocapn.runtime.invoke import invoke_local, select_value

if TYPE_CHECKING:
    from charter.ocapn.runtime.peer import PeerSession

FULFILL = Symbol("fulfill")
BREAK = Symbol("break")

_PENDING = 0
_FORWARDED = 1
_FULFILLED = 2
_BROKEN = 3

SettleCallback = Callable[[bool, Any], None]


def error_reason(exc: BaseException) -> Any:
    """The break reason sent for a local exception (type and message, no traceback)."""
    if isinstance(exc, PromiseBrokenError):
        return exc.reason
    text = str(exc)
    return error_record(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


class Promise:
    """An eventual value; ``await`` it, or send to it to pipeline."""

    __slots__ = ("__weakref__", "_callbacks", "_pipe", "_queued", "_state", "_value")

    def __init__(self) -> None:
        self._state = _PENDING
        self._value: Any = None
        self._callbacks: list[SettleCallback] | None = None
        self._queued: list[tuple[tuple[Any, ...], Promise | None]] | None = None
        self._pipe: tuple[PeerSession, Target] | None = None

    # -- construction -----------------------------------------------------------------

    @classmethod
    def fulfilled(cls, value: Any) -> Promise:
        p = cls()
        p.resolve(value)
        return p

    @classmethod
    def broken(cls, reason: Any) -> Promise:
        p = cls()
        p.break_(reason)
        return p

    # -- state ------------------------------------------------------------------------

    def _final(self) -> Promise:
        p = self
        while p._state == _FORWARDED:
            p = p._value
        return p

    @property
    def settled(self) -> bool:
        return self._final()._state >= _FULFILLED

    @property
    def is_broken(self) -> bool:
        return self._final()._state == _BROKEN

    def result(self) -> Any:
        """The fulfilled value now; raises if broken or still pending."""
        p = self._final()
        if p._state == _FULFILLED:
            return p._value
        if p._state == _BROKEN:
            raise PromiseBrokenError(p._value)
        raise asyncio.InvalidStateError("promise is still pending")

    # -- settling ---------------------------------------------------------------------

    def resolve(self, value: Any) -> None:
        """Fulfil with ``value``; a promise value forwards to it. Later calls are ignored."""
        if self._state != _PENDING:
            return
        if isinstance(value, Promise):
            target = value._final()
            if target is self:
                self.break_(error_record("promise resolved to itself"))
                return
            if target._state == _FULFILLED:
                value = target._value
            elif target._state == _BROKEN:
                self.break_(target._value)
                return
            else:
                self._forward(target)
                return
        self._state = _FULFILLED
        self._value = value
        self._pipe = None
        self._run(True, value)

    def break_(self, reason: Any) -> None:
        """Break with ``reason``. Later calls are ignored."""
        if self._state != _PENDING:
            return
        self._state = _BROKEN
        self._value = reason
        self._pipe = None
        self._run(False, reason)

    def _forward(self, target: Promise) -> None:
        self._state = _FORWARDED
        self._value = target
        self._pipe = None
        callbacks, self._callbacks = self._callbacks, None
        queued, self._queued = self._queued, None
        if queued:
            for args, res in queued:
                if res is None:
                    target.send_only(*args)
                else:
                    res.resolve(target.send(*args))
        if callbacks:
            for cb in callbacks:
                target.on_settle(cb)

    def _run(self, ok: bool, value: Any) -> None:
        callbacks, self._callbacks = self._callbacks, None
        queued, self._queued = self._queued, None
        if queued:
            for args, res in queued:
                if not ok:
                    if res is not None:
                        res.break_(value)
                elif res is None:
                    send_only(value, args)
                else:
                    res.resolve(send(value, args))
        if callbacks:
            for cb in callbacks:
                cb(ok, value)

    def on_settle(self, callback: SettleCallback) -> None:
        """Call ``callback(ok, value_or_reason)`` once settled (now, if already)."""
        p = self._final()
        if p._state == _FULFILLED:
            callback(True, p._value)
        elif p._state == _BROKEN:
            callback(False, p._value)
        elif p._callbacks is None:
            p._callbacks = [callback]
        else:
            p._callbacks.append(callback)

    def __await__(self) -> Generator[Any, None, Any]:
        p = self._final()
        if p._state == _PENDING:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

            def done(ok: bool, value: Any) -> None:
                if fut.done():
                    return
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(PromiseBrokenError(value))

            p.on_settle(done)
            return (yield from fut.__await__())
        if p._state == _FULFILLED:
            return p._value
        raise PromiseBrokenError(p._value)

    # -- eventual sends ---------------------------------------------------------------

    def send(self, *args: Any) -> Promise:
        """Send a message to the eventual value; pipelined when the promise is remote."""
        p = self._final()
        if p._state == _FULFILLED:
            return send(p._value, args)
        if p._state == _BROKEN:
            return Promise.broken(p._value)
        pipe = p._pipe
        if pipe is not None and pipe[0].usable:
            return pipe[0].deliver(pipe[1], args)
        res = Promise()
        p._enqueue(args, res)
        return res

    __call__ = send

    def send_only(self, *args: Any) -> None:
        """Fire-and-forget to the eventual value."""
        p = self._final()
        if p._state == _FULFILLED:
            send_only(p._value, args)
            return
        if p._state == _BROKEN:
            return
        pipe = p._pipe
        if pipe is not None and pipe[0].usable:
            pipe[0].deliver_only(pipe[1], args)
            return
        p._enqueue(args, None)

    def _enqueue(self, args: tuple[Any, ...], res: Promise | None) -> None:
        if self._queued is None:
            self._queued = [(args, res)]
        else:
            self._queued.append((args, res))

    def _select(self, kind: SelectKind, key: str | int) -> Promise:
        p = self._final()
        pipe = p._pipe
        if p._state == _PENDING and pipe is not None and pipe[0].usable:
            return pipe[0].select(kind, pipe[1], key)
        res = Promise()

        def done(ok: bool, value: Any) -> None:
            if not ok:
                res.break_(value)
                return
            try:
                res.resolve(select_value(kind, value, key))
            except Exception as exc:
                res.break_(error_reason(exc))

        p.on_settle(done)
        return res

    def get(self, field: str) -> Promise:
        """The eventual value's field (pipelined ``op:get``)."""
        return self._select(SelectKind.GET, field)

    def index(self, i: int) -> Promise:
        """The eventual list's element (pipelined ``op:index``)."""
        return self._select(SelectKind.INDEX, i)

    def untag(self, tag: str) -> Promise:
        """The eventual tagged value's payload (pipelined ``op:untag``)."""
        return self._select(SelectKind.UNTAG, tag)

    def __repr__(self) -> str:
        p = self._final()
        state = {_PENDING: "pending", _FULFILLED: "fulfilled", _BROKEN: "broken"}[p._state]
        return f"<Promise {state}>"


class WireCount:
    """How many times the peer sent us one import (released together when collected)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 1


class RemoteRef:
    """A reference to an object exported by a peer (position ``position`` there)."""

    __slots__ = ("__weakref__", "_count", "_peer", "_position")

    def __init__(self, peer: PeerSession, position: int) -> None:
        self._peer = peer
        self._position = position
        self._count = WireCount()

    @property
    def peer(self) -> PeerSession:
        return self._peer

    @property
    def position(self) -> int:
        return self._position

    def send(self, *args: Any) -> Promise:
        """Send a message; the promise settles with the reply (and can be pipelined on)."""
        return self._peer.deliver(Export(self._position), args)

    __call__ = send

    def send_only(self, *args: Any) -> None:
        """Send a message whose result nobody needs."""
        self._peer.deliver_only(Export(self._position), args)

    def __repr__(self) -> str:
        return f"<RemoteRef {self._peer.name}#{self._position}>"


def send(target: Any, args: tuple[Any, ...] | list[Any]) -> Promise:
    """Eventually deliver ``args`` to ``target`` (remote, promise or local object)."""
    if isinstance(target, RemoteRef):
        return target._peer.deliver(Export(target._position), args)
    if isinstance(target, Promise):
        return target.send(*args)
    return call_local(target, args)


def send_only(target: Any, args: tuple[Any, ...] | list[Any]) -> None:
    if isinstance(target, RemoteRef):
        target._peer.deliver_only(Export(target._position), args)
    elif isinstance(target, Promise):
        target.send_only(*args)
    else:
        call_local(target, args)


def call_local(obj: Any, args: tuple[Any, ...] | list[Any]) -> Promise:
    """Invoke a local object now; its result (value, coroutine or promise) as a promise."""
    res = Promise()
    try:
        value = invoke_local(obj, args)
    except Exception as exc:
        res.break_(error_reason(exc))
        return res
    if asyncio.iscoroutine(value):
        task = asyncio.get_running_loop().create_task(value)
        _background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            _background.discard(t)
            if t.cancelled():
                res.break_(error_record("cancelled"))
            elif (exc := t.exception()) is not None:
                res.break_(error_reason(exc))
            else:
                res.resolve(t.result())

        task.add_done_callback(done)
        return res
    res.resolve(value)
    return res


_background: set[asyncio.Task[Any]] = set()


class Resolver:
    """The local object a peer tells a result to: ``fulfill value`` or ``break reason``."""

    __slots__ = ("__weakref__", "promise")

    def __init__(self, promise: Promise) -> None:
        self.promise = promise

    def __call__(self, *args: Any) -> None:
        if len(args) == 2 and args[0] == FULFILL:
            self.promise.resolve(args[1])
        elif len(args) == 2 and args[0] == BREAK:
            self.promise.break_(args[1])
        else:
            raise TypeError("a resolver takes 'fulfill or 'break with one value")


def answer_target(pos: int) -> Answer:
    return Answer(pos)


def promise_pair() -> tuple[Promise, Resolver]:
    """A fresh promise and the resolver object that settles it (both passable)."""
    p = Promise()
    return p, Resolver(p)
