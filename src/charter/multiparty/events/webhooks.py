"""Webhook delivery: per subscription, in offset order, one event at a time.

An event counts as delivered only on a 2xx answer; an error status, a refused connection
or a timeout is a failure, retried with exponential backoff. After the last attempt the
event becomes a dead letter and delivery moves on to the next event: one bad event does
not stall the subscription, and it can be redelivered later from the dead-letter list.
The stored offset moves past an event only once it is delivered or dead-lettered, so a
restart resumes exactly where delivery stood (the event in progress is sent again).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from charter.multiparty.events.filters import EventFilter
from charter.multiparty.events.render import render_events
from charter.multiparty.events.retry import RetryPolicy
from charter.multiparty.events.spec import WebhookSpec
from charter.store import Store
from charter.store.events import list_events
from charter.store.models import EventRow, SubscriptionRow
from charter.store.subscriptions import (
    advance_offset,
    dead_letter,
    next_redelivery,
    settle_redelivery,
)

__all__ = ["Outcome", "WebhookWorker"]

log = logging.getLogger("charter.events.webhooks")

PAGE = 200
ERROR_TEXT = 500
"""Longest error text kept with a dead letter."""


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    error: str | None


class WebhookWorker:
    """Delivers one webhook subscription's events until cancelled or the subscription is gone."""

    def __init__(
        self, store: Store, subscription_seq: int, client: httpx.AsyncClient, poll_interval: float
    ) -> None:
        self.store = store
        self.subscription_seq = subscription_seq
        self.client = client
        self.poll_interval = poll_interval

    async def run(self) -> None:
        while True:
            wake = self.store.pulse.current()
            try:
                sub = await self._load()
                if sub is None:
                    return
                busy = await self._redeliver_one(sub) or await self._deliver_page(sub)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:
                log.exception("webhook delivery of subscription %s failed", self.subscription_seq)
                busy = False
            if not busy:
                try:
                    async with asyncio.timeout(self.poll_interval):
                        await wake.wait()
                except TimeoutError:
                    pass

    async def _load(self) -> SubscriptionRow | None:
        async with self.store.read() as session:
            return await session.get(SubscriptionRow, self.subscription_seq)

    async def _deliver_page(self, sub: SubscriptionRow) -> bool:
        flt = EventFilter.from_stored(sub.filters)
        async with self.store.read() as session:
            events = await list_events(session, after=sub.stored_offset, limit=PAGE)
        if not events:
            return False
        skipped_to: int | None = None
        for event in events:
            if not flt.matches(event):
                skipped_to = event.seq
                continue
            if skipped_to is not None:
                await self._advance(skipped_to)
                skipped_to = None
            outcome = await self._attempts(sub, event, redelivery=False)
            async with self.store.transaction() as session:
                if not outcome.delivered:
                    await dead_letter(
                        session, sub.seq, event.seq, outcome.attempts, outcome.error or ""
                    )
                await advance_offset(session, sub.seq, event.seq)
            if await self._load() is None:
                return False
        if skipped_to is not None:
            await self._advance(skipped_to)
        return True

    async def _redeliver_one(self, sub: SubscriptionRow) -> bool:
        async with self.store.read() as session:
            found = await next_redelivery(session, sub.seq)
        if found is None:
            return False
        delivery, event = found
        outcome = await self._attempts(sub, event, redelivery=True)
        async with self.store.transaction() as session:
            if outcome.delivered:
                await settle_redelivery(session, delivery.seq, outcome.attempts)
            else:
                await dead_letter(
                    session, sub.seq, event.seq, outcome.attempts, outcome.error or ""
                )
        return True

    async def _advance(self, offset: int) -> None:
        async with self.store.transaction() as session:
            await advance_offset(session, self.subscription_seq, offset)

    async def _attempts(
        self, sub: SubscriptionRow, event: EventRow, *, redelivery: bool
    ) -> Outcome:
        spec = WebhookSpec.model_validate(sub.options["webhook"])
        policy: RetryPolicy = spec.retry.policy()
        async with self.store.read() as session:
            (rendered,) = await render_events(
                session, [event], with_data=bool(sub.options.get("with_data"))
            )
        failures = 0
        while True:
            body = {
                "subscription": sub.name,
                "event": rendered,
                "attempt": failures + 1,
                "redelivery": redelivery,
            }
            error = await self._post(spec, event, sub.name, body)
            if error is None:
                return Outcome(True, failures + 1, None)
            failures += 1
            delay = policy.delay_after(failures)
            log.info(
                "webhook %s: event %s attempt %d failed: %s", sub.name, event.seq, failures, error
            )
            if delay is None:
                return Outcome(False, failures, error)
            await asyncio.sleep(delay)  # the backoff schedule itself, not a wait for a state

    async def _post(
        self, spec: WebhookSpec, event: EventRow, name: str, body: dict[str, Any]
    ) -> str | None:
        headers = {
            **spec.headers,
            "X-Charter-Event-Id": event.id,
            "X-Charter-Subscription": name,
        }
        try:
            answer = await self.client.post(
                spec.url, json=body, headers=headers, timeout=spec.timeout
            )
        except httpx.TimeoutException:
            return f"no answer within {spec.timeout:g} s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:ERROR_TEXT]
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}: {answer.text[:200]}"[:ERROR_TEXT]
