"""Event delivery over a WebSocket: ``start``, pushed events, ``ack``, redelivery.

Protocol (JSON text frames):

- client ``{"type": "start", "name": "<subscription>"}`` for a durable subscription, or
  ``{"type": "start", "ephemeral": true, "filter": {...}, "first_event": ..., ...}``;
- server ``{"type": "started", "subscription": name|null, "offset": N}``, then
  ``{"type": "event", "subscription": name|null, "event": {..., "id", "offset"}}``;
- client ``{"type": "ack", "id": "<event id>"}`` for each event.

At most ``read_ahead`` events are unacknowledged at a time; an event not acknowledged
within ``ack_timeout`` is sent again. A durable subscription's stored offset moves only to
just below its lowest unacknowledged event, so after a disconnect the next ``start``
resumes without loss (events acknowledged above that point may come again: deduplicate by
id). One connection serves a durable subscription at a time: a new ``start`` takes it over.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from charter.multiparty.events.filters import EventFilter
from charter.multiparty.events.render import render_events
from charter.multiparty.events.spec import EphemeralSpec
from charter.multiparty.events.window import AckWindow
from charter.store import Store
from charter.store.events import last_offset, list_events
from charter.store.models import EventRow
from charter.store.subscriptions import advance_offset, get_subscription

__all__ = ["WsSession", "WsSettings"]

log = logging.getLogger("charter.events.ws")

POLICY_VIOLATION = 1008


@dataclass(frozen=True)
class WsSettings:
    poll_interval: float = 5.0
    """Longest the pusher sleeps without a commit pulse (a safety net, not the trigger)."""
    start_timeout: float = 30.0
    """How long a new connection may take to send ``start``."""


class _Closed(Exception):
    """The connection ended (client left, or the subscription moved to another connection)."""


@dataclass
class _Started:
    name: str | None
    subscription_seq: int | None
    window: AckWindow
    flt: EventFilter
    with_data: bool
    autoack: bool


class WsSession:
    """One WebSocket connection; ``serve`` returns when it is over."""

    def __init__(
        self, store: Store, ws: WebSocket, settings: WsSettings, owners: dict[str, WsSession]
    ) -> None:
        self.store = store
        self.ws = ws
        self.settings = settings
        self._owners = owners
        self._stop: tuple[str, str] | None = None
        self._acked = asyncio.Event()

    def stop(self, code: str, detail: str) -> None:
        """End this connection with an error frame (taken over, subscription deleted, shutdown)."""
        if self._stop is None:
            self._stop = (code, detail)
        self._acked.set()

    async def serve(self) -> None:
        await self.ws.accept()
        started: _Started | None = None
        try:
            started = await self._start()
            if started is None:
                return
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._receive(started))
                    tg.create_task(self._push(started))
            except* (_Closed, WebSocketDisconnect):
                pass
        finally:
            if started is not None:
                await self._persist(started)
                if started.name is not None and self._owners.get(started.name) is self:
                    del self._owners[started.name]

    async def _error(self, code: str, detail: str, *, close: bool) -> None:
        try:
            await self.ws.send_json({"type": "error", "code": code, "detail": detail})
            if close:
                await self.ws.close(code=POLICY_VIOLATION, reason=code)
        except (WebSocketDisconnect, RuntimeError):
            pass

    async def _start(self) -> _Started | None:
        try:
            async with asyncio.timeout(self.settings.start_timeout):
                raw = await self.ws.receive_text()
        except TimeoutError:
            await self._error("events.ws.start_timeout", "no start message in time", close=True)
            return None
        except WebSocketDisconnect:
            return None
        message = _parse(raw)
        if message is None or message.get("type") != "start":
            await self._error("events.ws.protocol", "the first message must be a start", close=True)
            return None
        if message.get("ephemeral") is True:
            return await self._start_ephemeral(message)
        name = message.get("name")
        if not isinstance(name, str):
            await self._error("events.ws.protocol", "start needs a name or ephemeral", close=True)
            return None
        async with self.store.read() as session:
            sub = await get_subscription(session, name)
        if sub is None:
            await self._error(
                "events.subscription.not_found", f"no subscription named {name!r}", close=True
            )
            return None
        if sub.transport != "websocket":
            await self._error(
                "events.subscription.transport",
                f"subscription {name!r} is delivered by {sub.transport}",
                close=True,
            )
            return None
        previous = self._owners.get(name)
        if previous is not None:
            previous.stop("events.ws.replaced", "another connection started this subscription")
        self._owners[name] = self
        window = AckWindow(sub.stored_offset, sub.read_ahead, float(sub.options["ack_timeout"]))
        await self.ws.send_json(
            {"type": "started", "subscription": name, "offset": str(window.offset)}
        )
        return _Started(
            name,
            sub.seq,
            window,
            EventFilter.from_stored(sub.filters),
            bool(sub.options.get("with_data")),
            autoack=False,
        )

    async def _start_ephemeral(self, message: dict[str, Any]) -> _Started | None:
        body = {k: v for k, v in message.items() if k not in ("type", "ephemeral")}
        try:
            spec = EphemeralSpec.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            await self._error("events.ws.invalid", f"{where}: {first.get('msg')}", close=True)
            return None
        async with self.store.read() as session:
            newest = await last_offset(session)
        window = AckWindow(spec.start_offset(newest), spec.read_ahead, spec.ack_timeout)
        await self.ws.send_json(
            {"type": "started", "subscription": None, "offset": str(window.offset)}
        )
        return _Started(
            None,
            None,
            window,
            EventFilter.from_spec(spec.filter),
            spec.with_data,
            spec.autoack,
        )

    async def _receive(self, started: _Started) -> None:
        while True:
            try:
                raw = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                raise _Closed() from None
            message = _parse(raw)
            if message is None:
                await self._error("events.ws.protocol", "frames must be JSON objects", close=False)
                continue
            kind = message.get("type")
            if kind == "ack" and isinstance(message.get("id"), str):
                started.window.ack(message["id"])
                self._acked.set()
            else:
                await self._error(
                    "events.ws.protocol", f"unexpected message type {kind!r}", close=False
                )

    async def _push(self, started: _Started) -> None:
        window = started.window
        loop = asyncio.get_running_loop()
        while True:
            if self._stop is not None:
                await self._error(*self._stop, close=True)
                raise _Closed()
            self._acked.clear()
            wake = self.store.pulse.current()
            await self._persist(started)
            for again in window.due(loop.time()):
                await self._send(started, again.payload)
            sent_any = await self._fill(started, loop.time())
            if sent_any:
                continue
            timeout = self.settings.poll_interval
            deadline = window.next_deadline()
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - loop.time()))
            await _first_of(wake, self._acked, timeout)

    async def _fill(self, started: _Started, now: float) -> bool:
        """Send the next matching events the window has room for; True if any were examined."""
        window = started.window
        if window.capacity <= 0:
            return False
        async with self.store.read() as session:
            events = await list_events(session, after=window.scanned, limit=200)
            examined: list[EventRow] = []
            chosen: list[EventRow] = []
            for event in events:
                if started.flt.matches(event):
                    if len(chosen) >= window.capacity:
                        break
                    chosen.append(event)
                examined.append(event)
            rendered = await render_events(session, chosen, with_data=started.with_data)
        payloads = {e.id: r for e, r in zip(chosen, rendered, strict=True)}
        for event in examined:
            payload = payloads.get(event.id)
            if payload is None:
                window.skip(event.seq)
                continue
            message = {"type": "event", "subscription": started.name, "event": payload}
            window.sent(event.seq, event.id, message, now)
            await self._send(started, message)
            if started.autoack:
                window.ack(event.id)
        return bool(examined)

    async def _send(self, started: _Started, message: dict[str, Any]) -> None:
        try:
            await self.ws.send_json(message)
        except (WebSocketDisconnect, RuntimeError):
            raise _Closed() from None

    async def _persist(self, started: _Started) -> None:
        if started.subscription_seq is None:
            return
        offset = started.window.take_offset()
        if offset is not None:
            async with self.store.transaction() as session:
                await advance_offset(session, started.subscription_seq, offset)


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def _first_of(a: asyncio.Event, b: asyncio.Event, seconds: float) -> None:
    """Wait until either event is set, or ``seconds`` pass."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
