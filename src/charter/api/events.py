"""REST and WebSocket routes of the node's events: the log, subscriptions, dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Query, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from charter.api.fastpath import FastRouter, query_pairs, send_json
from charter.api.problems import Problem
from charter.multiparty.events.errors import (
    EventsError,
    SubscriptionExists,
    SubscriptionNotFound,
)
from charter.multiparty.events.spec import SUBSCRIPTION_NAME_PATTERN, SubscriptionSpec
from charter.multiparty.events.types import EVENT_TYPE_PATTERN, is_event_type

if TYPE_CHECKING:
    from charter.multiparty.events.service import EventsService

__all__ = ["MAX_LIMIT", "events_router"]

MAX_LIMIT = 1000
MAX_TOPIC_QUERY = 256
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="most items answered")]
After = Annotated[int, Query(ge=0, description="answer items past this offset")]
Name = Annotated[str, Field(pattern=SUBSCRIPTION_NAME_PATTERN)]


class Redeliver(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=1000,
        description="event ids to redeliver; omitted: every dead letter",
    )


def _problem(exc: EventsError) -> Problem:
    status = {SubscriptionNotFound: 404, SubscriptionExists: 409}.get(type(exc), 400)
    return Problem(status, exc.code, exc.message)


def events_router(service: EventsService) -> APIRouter:
    """Routes mounted under ``/api/v1``."""
    router = FastRouter()

    @router.get("/events", tags=["events"], summary="The node's event log, in offset order")
    async def list_events(
        after: After = 0,
        limit: Limit = 100,
        type: Annotated[
            list[str] | None, Query(description=f"event types ({EVENT_TYPE_PATTERN})")
        ] = None,
        topic: Annotated[str | None, Query(max_length=MAX_TOPIC_QUERY)] = None,
        with_data: Annotated[bool, Query(description="inline messages and data values")] = False,
    ) -> list[dict[str, Any]]:
        for t in type or ():
            if not is_event_type(t):
                raise Problem(422, "api.validation", f"type: {t!r} is not an event type name")
        return await service.events(
            after=after, limit=limit, types=type, topic=topic, with_data=with_data
        )

    async def fast_events(scope: Scope, receive: Receive, send: Send) -> bool:
        """``GET /events`` for the query parameters above, each well formed."""
        pairs = query_pairs(scope)
        if pairs is None:
            return False
        after, limit, with_data = 0, 100, False
        types: list[str] = []
        topic: str | None = None
        for name, value in pairs:  # a repeated single-valued parameter: the last one counts
            if name == "after" and value.isascii() and value.isdigit():
                after = int(value)
            elif name == "limit" and value.isascii() and value.isdigit():
                limit = int(value)
                if not 1 <= limit <= MAX_LIMIT:
                    return False
            elif name == "type" and is_event_type(value):
                types.append(value)
            elif name == "topic" and len(value) <= MAX_TOPIC_QUERY:
                topic = value
            elif name == "with_data" and value in ("true", "false"):
                with_data = value == "true"
            else:
                return False  # FastAPI answers (422) or ignores what is unusual
        page = await service.events(
            after=after, limit=limit, types=types or None, topic=topic, with_data=with_data
        )
        await send_json(send, 200, page)
        return True

    router.add_fast("GET", "/api/v1/events", fast_events)

    @router.post(
        "/subscriptions",
        tags=["subscriptions"],
        summary="Create a durable subscription",
        status_code=201,
    )
    async def create(spec: SubscriptionSpec) -> dict[str, Any]:
        try:
            return await service.create(spec)
        except EventsError as exc:
            raise _problem(exc) from None

    @router.get("/subscriptions", tags=["subscriptions"], summary="List subscriptions")
    async def list_subscriptions(after: After = 0, limit: Limit = 100) -> list[dict[str, Any]]:
        return await service.subscriptions(after=after, limit=limit)

    @router.get("/subscriptions/{name}", tags=["subscriptions"], summary="One subscription")
    async def get(name: str) -> dict[str, Any]:
        try:
            return await service.get(name)
        except EventsError as exc:
            raise _problem(exc) from None

    @router.delete(
        "/subscriptions/{name}",
        tags=["subscriptions"],
        summary="Delete a subscription (its dead letters go with it)",
        status_code=204,
    )
    async def delete(name: str) -> None:
        try:
            await service.delete(name)
        except EventsError as exc:
            raise _problem(exc) from None

    @router.get(
        "/subscriptions/{name}/deadletters",
        tags=["subscriptions"],
        summary="Events a webhook subscription gave up on, in offset order",
    )
    async def dead_letters(
        name: str,
        after: After = 0,
        limit: Limit = 100,
        with_data: bool = False,
    ) -> list[dict[str, Any]]:
        try:
            return await service.dead_letters(name, after=after, limit=limit, with_data=with_data)
        except EventsError as exc:
            raise _problem(exc) from None

    @router.post(
        "/subscriptions/{name}/deadletters/redeliver",
        tags=["subscriptions"],
        summary="Queue dead letters for another delivery",
    )
    async def redeliver(
        name: str, body: Annotated[Redeliver | None, Body()] = None
    ) -> dict[str, int]:
        try:
            count = await service.redeliver(name, None if body is None else body.events)
        except EventsError as exc:
            raise _problem(exc) from None
        return {"queued": count}

    @router.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await service.websocket(websocket)

    return router
