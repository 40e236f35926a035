"""REST endpoints for messages, data and datatypes (``charter.multiparty``).

- ``POST /messages/broadcast|private|requestreply``: ``{header: {topic, tag, cid},
  group: {members: [...]}, data: [{value} | {datatype: {name, version}, value} | {id}],
  idempotency_key}``. Answers 202 with the stored message (``state`` pending), 200 with the
  existing message when the idempotency key was used before, and with ``?wait=confirmed``
  once the message is confirmed (or failed) here. Every value is validated (datatype
  schemas with ``jsonschema``) before anything is stored.
- ``GET /messages`` (filters ``topic``, ``author``, ``group``, ``state``, ``type``,
  ``after``, ``limit``, ``with_data``), ``GET /messages/{id}``, ``/messages/{id}/data``,
  ``/messages/{id}/blocked-by``.
- ``POST /datatypes`` (JSON Schema, versioned), ``GET /datatypes``,
  ``GET /datatypes/{name}/{version}``; ``POST /data`` (a JSON value), ``GET /data/{id}``.

``prepare_message`` is the one validation of a message a client asks for; the tokens routes
use it for a message carried by a transfer (``BoundMessageIn``), so both refuse alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import jsonschema  # type: ignore[import-untyped]
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from charter.api.fastpath import FastHandler, FastRouter, query_pairs, send_json
from charter.api.problems import Problem, problem_response
from charter.api.tables import read_body
from charter.errors import CharterError
from charter.multiparty.errors import InvalidMessage
from charter.multiparty.model import MAX_DATA_ITEMS, MAX_TOPIC_BYTES, DataItem, canonical_json
from charter.multiparty.service import MessagingService, SendRequest, now_us
from charter.store.data import get_data, get_datatype, insert_datatype, list_datatypes
from charter.store.ids import new_id
from charter.store.messages import MessageFilter, data_of, get_message, list_messages
from charter.store.models import DataRow, DatatypeRow, MessageRow

__all__ = ["BoundMessageIn", "MessageIn", "messages_router", "prepare_message"]

MAX_WAIT_S = 60.0
DEFAULT_WAIT_S = 30.0
FAST_BODY_MAX = 1024 * 1024
"""Larger submits (many data items inline) go the FastAPI way, which has no bound."""
_JSON_TYPE = b"application/json"
_SCHEMA_CHECKER = jsonschema.Draft202012Validator


WaitQ = Annotated[Literal["confirmed"] | None, Query()]
TimeoutQ = Annotated[float, Query(alias="timeout", gt=0, le=MAX_WAIT_S)]
After = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Header(_Strict):
    topic: str = Field(default="", max_length=MAX_TOPIC_BYTES)
    tag: str = Field(default="", max_length=200)
    cid: str = Field(default="", max_length=36)


class GroupIn(_Strict):
    members: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(max_length=256)


class DatatypeRef(_Strict):
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=64)


class DataIn(_Strict):
    id: str | None = None
    value: Any = None
    datatype: DatatypeRef | None = None


class MessageIn(_Strict):
    header: Header = Field(default_factory=Header)
    group: GroupIn | None = None
    data: list[DataIn] = Field(default_factory=list, max_length=MAX_DATA_ITEMS)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class BoundMessageIn(_Strict):
    """A message carried by a token operation: private with ``group``, else a broadcast."""

    header: Header = Field(default_factory=Header)
    group: GroupIn | None = None
    data: list[DataIn] = Field(default_factory=list, max_length=MAX_DATA_ITEMS)

    @property
    def kind(self) -> Literal["broadcast", "private"]:
        return "broadcast" if self.group is None else "private"


class DatatypeIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(alias="schema")


class ValueIn(_Strict):
    value: Any
    datatype: DatatypeRef | None = None


async def _validate_value(
    s: MessagingService, value: Any, ref: DatatypeRef | None, where: str
) -> tuple[bytes, str, str]:
    raw = canonical_json(value)
    if ref is None:
        return raw, "", ""
    async with s.store.read() as session:
        dt = await get_datatype(session, ref.name, ref.version)
    if dt is None:
        raise Problem(400, "mp.datatype.unknown", f"{where}: no datatype {ref.name} {ref.version}")
    errors = sorted(_SCHEMA_CHECKER(dt.schema).iter_errors(value), key=str)
    if errors:
        first = errors[0]
        path = "/".join(str(p) for p in first.absolute_path)
        raise Problem(
            400,
            "mp.data.schema",
            f"{where} does not match {ref.name} {ref.version}: {first.message}"
            + (f" (at /{path})" if path else ""),
            extra={"errors": [e.message for e in errors[:10]]},
        )
    return raw, ref.name, ref.version


async def prepare_message(
    s: MessagingService,
    kind: Literal["broadcast", "private", "requestreply"],
    header: Header,
    group: GroupIn | None,
    data: Sequence[DataIn],
    idempotency_key: str | None = None,
) -> tuple[SendRequest, list[DataItem]]:
    """Check a message a client asks for, and its data, before anything is stored or sent;
    raises ``Problem`` (``mp.message.invalid``, ``mp.data.schema``, ``mp.datatype.unknown``,
    ``mp.data.not_found``, ``mp.data.in_use``)."""
    if kind == "broadcast" and group is not None:
        raise Problem(400, "mp.message.invalid", "a broadcast goes to every member: no group")
    if kind != "broadcast" and group is None:
        raise Problem(400, "mp.message.invalid", "a private message names its group")
    if len(header.topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise Problem(400, "mp.message.invalid", f"a topic is at most {MAX_TOPIC_BYTES} bytes")
    if not data:
        raise Problem(400, "mp.message.invalid", "a message holds at least one data item")
    items: list[DataItem] = []
    for i, d in enumerate(data):
        where = f"data[{i}]"
        if d.id is not None:
            if d.value is not None or d.datatype is not None:
                raise Problem(400, "mp.message.invalid", f"{where}: an id or a value, not both")
            async with s.store.read() as session:
                row = await get_data(session, d.id)
            if row is None:
                raise Problem(400, "mp.data.not_found", f"{where}: no data {d.id}")
            if row.message_id is not None:
                raise Problem(409, "mp.data.in_use", f"{where}: data {d.id} belongs to a message")
            value = None if row.value is None and row.blob_hash else canonical_json(row.value)
            items.append(
                DataItem(
                    row.id,
                    value,
                    row.datatype_name or "",
                    row.datatype_version or "",
                    bytes.fromhex(row.blob_hash) if row.blob_hash else b"",
                    row.blob_size if row.blob_size is not None else -1,
                    row.blob_name or "",
                )
            )
            continue
        try:
            raw, name, version = await _validate_value(s, d.value, d.datatype, where)
        except InvalidMessage as exc:
            raise Problem(400, exc.code, f"{where}: {exc.message}") from None
        items.append(DataItem(new_id(), raw, name, version))
    req = SendRequest(
        kind,
        header.topic,
        header.tag,
        header.cid,
        tuple(group.members) if group is not None else (),
        (),
        idempotency_key,
    )
    try:
        s.group_for(req)
    except InvalidMessage as exc:
        raise Problem(400, exc.code, exc.message) from None
    return req, items


def _message_json(m: MessageRow, data: list[DataRow] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m.id,
        "type": m.type,
        "author": {"member": m.member, "node": m.node},
        "topic": m.topic,
        "tag": getattr(m, "tag", None) or "",
        "cid": m.cid or "",
        "group": m.group_hash,
        "context": m.context,
        "state": m.state,
        "hash": m.hash,
        "batch": m.batch_id,
        "pin": None if m.pin_seqno is None else {"seqno": str(m.pin_seqno), "tx_id": m.pin_tx_id},
        "reason": m.reason,
        "created_us": str(m.created_us),
        "confirmed_us": None if m.confirmed_us is None else str(m.confirmed_us),
        "offset": str(m.seq),
        "idempotency_key": m.idempotency_key,
    }
    if data is not None:
        out["data"] = [_data_json(d) for d in data]
    return out


def _data_json(d: DataRow) -> dict[str, Any]:
    out: dict[str, Any] = {"id": d.id, "hash": d.hash, "message_id": d.message_id}
    if d.blob_hash is None or d.value is not None:
        out["value"] = d.value
    if d.datatype_name:
        out["datatype"] = {"name": d.datatype_name, "version": d.datatype_version}
    if d.blob_hash:
        out["blob"] = {"hash": d.blob_hash, "size": str(d.blob_size), "name": d.blob_name}
    return out


def messages_router(get: Callable[[], MessagingService]) -> APIRouter:
    """``get()`` answers the node's running messaging service (503 until it runs)."""
    router = FastRouter(tags=["messages"])

    def service() -> MessagingService:
        try:
            return get()
        except LookupError:
            raise Problem(503, "mp.not_ready", "the messaging service is starting") from None

    async def answer(
        kind: Literal["broadcast", "private", "requestreply"],
        body: MessageIn,
        wait: str | None,
        wait_s: float,
    ) -> tuple[int, dict[str, Any]]:
        s = service()
        req, items = await prepare_message(
            s, kind, body.header, body.group, body.data, body.idempotency_key
        )
        try:
            # items given by value got fresh ids from prepare_message: nothing to look up
            minted = frozenset(i.id for i, d in zip(items, body.data, strict=True) if d.id is None)
            mid, created, stored = await s.send_view(req, items, minted)
        except InvalidMessage as exc:
            raise Problem(400, exc.code, exc.message) from None
        except IntegrityError:
            raise Problem(
                409, "mp.message.conflict", "a message with this idempotency key exists"
            ) from None
        status = 202 if created else 200
        if wait == "confirmed":
            final = await s.wait_final(mid, min(wait_s, MAX_WAIT_S))
            status = 200 if final is not None else 202
            stored = None  # its state has moved on since the round stored it
        if stored is None:
            async with s.store.read() as session:
                fresh = await get_message(session, mid)
                data = (await data_of(session, [mid]))[mid]
            assert fresh is not None
            stored = (fresh, data)
        return status, _message_json(*stored)

    async def send(
        kind: Literal["broadcast", "private", "requestreply"],
        body: MessageIn,
        wait: str | None,
        wait_s: float,
    ) -> JSONResponse:
        status, content = await answer(kind, body, wait, wait_s)
        return JSONResponse(content, status_code=status)

    def fast_send(kind: Literal["broadcast", "private", "requestreply"]) -> FastHandler:
        """The submit routes below for a JSON body and no query string but ``wait``."""

        async def handle(scope: Scope, receive: Receive, send: Send) -> bool:
            pairs = query_pairs(scope)
            if pairs is None or len(pairs) > 1 or any(p != ("wait", "confirmed") for p in pairs):
                return False
            length: bytes | None = None
            ctype: bytes | None = None
            for name, value in scope["headers"]:
                if name == b"content-length":
                    length = value
                elif name == b"content-type":
                    ctype = value
            if length is None or not length.isdigit() or int(length) > FAST_BODY_MAX:
                return False
            if ctype is not None and ctype.partition(b";")[0].strip().lower() != _JSON_TYPE:
                return False
            path: str = scope["path"]
            try:
                raw = await read_body(scope, receive, FAST_BODY_MAX)
                try:
                    body = MessageIn.model_validate(json.loads(raw))
                except (ValueError, ValidationError):
                    return False  # FastAPI answers its 422 problem
                status, content = await answer(
                    kind, body, "confirmed" if pairs else None, DEFAULT_WAIT_S
                )
            except Problem as problem:
                await problem_response(problem, path)(scope, receive, send)
                return True
            except CharterError as exc:
                await problem_response(Problem.from_error(exc), path)(scope, receive, send)
                return True
            await send_json(send, status, content)
            return True

        return handle

    kinds: tuple[Literal["broadcast", "private", "requestreply"], ...] = (
        "broadcast",
        "private",
        "requestreply",
    )
    for kind in kinds:
        router.add_fast("POST", f"/api/v1/messages/{kind}", fast_send(kind))

    @router.post("/messages/broadcast", status_code=202)
    async def broadcast(
        body: MessageIn, wait: WaitQ = None, wait_s: TimeoutQ = DEFAULT_WAIT_S
    ) -> JSONResponse:
        return await send("broadcast", body, wait, wait_s)

    @router.post("/messages/private", status_code=202)
    async def private(
        body: MessageIn, wait: WaitQ = None, wait_s: TimeoutQ = DEFAULT_WAIT_S
    ) -> JSONResponse:
        return await send("private", body, wait, wait_s)

    @router.post("/messages/requestreply", status_code=202)
    async def requestreply(
        body: MessageIn, wait: WaitQ = None, wait_s: TimeoutQ = DEFAULT_WAIT_S
    ) -> JSONResponse:
        return await send("requestreply", body, wait, wait_s)

    @router.get("/messages")
    async def list_(
        topic: str | None = None,
        author: str | None = None,
        group: str | None = None,
        state: str | None = None,
        type: str | None = None,
        after: After = 0,
        limit: Limit = 100,
        with_data: bool = False,
    ) -> dict[str, Any]:
        s = service()
        flt = MessageFilter(topic=topic, type=type, state=state, member=author, group_hash=group)
        async with s.store.read() as session:
            rows = await list_messages(session, flt, after=after, limit=limit)
            data = await data_of(session, [m.id for m in rows]) if with_data else {}
        items = [_message_json(m, data.get(m.id) if with_data else None) for m in rows]
        return {"items": items, "next": str(rows[-1].seq) if rows else str(after)}

    async def one(message_id: str) -> MessageRow:
        s = service()
        async with s.store.read() as session:
            m = await get_message(session, message_id)
        if m is None:
            raise Problem(404, "mp.message.not_found", f"no message {message_id}")
        return m

    @router.get("/messages/{message_id}")
    async def get_one(message_id: str, with_data: bool = False) -> dict[str, Any]:
        m = await one(message_id)
        data = None
        if with_data:
            async with service().store.read() as session:
                data = (await data_of(session, [m.id]))[m.id]
        return _message_json(m, data)

    @router.get("/messages/{message_id}/data")
    async def get_data_of(message_id: str) -> list[dict[str, Any]]:
        m = await one(message_id)
        async with service().store.read() as session:
            return [_data_json(d) for d in (await data_of(session, [m.id]))[m.id]]

    @router.get("/messages/{message_id}/blocked-by")
    async def blocked_by(message_id: str) -> dict[str, Any]:
        m = await one(message_id)
        out: dict[str, Any] = {"id": m.id, "state": m.state, "blocked": False}
        if m.state in ("confirmed", "failed", "rejected"):
            return out
        if m.state == "pending":
            return {**out, "blocked": True, "waiting_for": "batch", "detail": "not yet batched"}
        b = service().aggregator.blocked_by(m.id)
        if b is None:
            return {**out, "blocked": True, "waiting_for": "processing"}
        out.update(blocked=True, waiting_for=b.waiting_for, context=b.context.hex())
        if b.pin is not None:
            out["pin"] = {"seqno": str(b.pin.seqno), "index": b.pin.index, "tx_id": b.pin.tx_id}
        if b.blocker is not None:
            out["blocker"] = {
                "seqno": str(b.blocker.seqno),
                "index": b.blocker.index,
                "tx_id": b.blocker.tx_id,
                "node": b.blocker.submitter,
                "message_id": b.blocker_message,
                "batch": b.batch_hash.hex() if b.batch_hash else None,
                "blobs": [x.hex() for x in b.blobs],
            }
        out["deadline_us"] = None if b.deadline_us is None else str(b.deadline_us)
        return out

    @router.post("/datatypes", status_code=201)
    async def add_datatype(body: DatatypeIn) -> dict[str, Any]:
        s = service()
        try:
            _SCHEMA_CHECKER.check_schema(body.schema_)
        except jsonschema.SchemaError as exc:
            raise Problem(
                400, "mp.datatype.schema", f"not a valid JSON Schema: {exc.message}"
            ) from None
        raw = canonical_json(body.schema_)
        row = DatatypeRow(
            id=new_id(),
            name=body.name,
            version=body.version,
            schema=body.schema_,
            hash=hashlib.sha256(raw).hexdigest(),
            created_us=now_us(),
        )
        try:
            async with s.store.transaction() as session:
                if await get_datatype(session, body.name, body.version) is not None:
                    raise Problem(
                        409, "mp.datatype.exists", f"datatype {body.name} {body.version} exists"
                    )
                await insert_datatype(session, row)
        except IntegrityError:
            raise Problem(
                409, "mp.datatype.exists", f"datatype {body.name} {body.version} exists"
            ) from None
        return _datatype_json(row)

    @router.get("/datatypes")
    async def datatypes(
        name: str | None = None,
        after: After = 0,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        async with service().store.read() as session:
            rows = await list_datatypes(session, name=name, after=after, limit=limit)
        return {
            "items": [_datatype_json(r) for r in rows],
            "next": str(rows[-1].seq) if rows else str(after),
        }

    @router.get("/datatypes/{name}/{version}")
    async def datatype(name: str, version: str) -> dict[str, Any]:
        async with service().store.read() as session:
            row = await get_datatype(session, name, version)
        if row is None:
            raise Problem(404, "mp.datatype.not_found", f"no datatype {name} {version}")
        return _datatype_json(row)

    @router.post("/data", status_code=201)
    async def add_data(body: ValueIn) -> dict[str, Any]:
        s = service()
        raw, name, version = await _validate_value(s, body.value, body.datatype, "value")
        item = DataItem(new_id(), raw, name, version)
        row = DataRow(
            id=item.id,
            message_id=None,
            position=0,
            value=body.value,
            datatype_name=name or None,
            datatype_version=version or None,
            hash=item.hash.hex(),
            created_us=now_us(),
        )
        async with s.store.transaction() as session:
            session.add(row)
        return _data_json(row)

    @router.get("/data/{data_id}")
    async def data(data_id: str) -> dict[str, Any]:
        async with service().store.read() as session:
            row = (
                await session.execute(select(DataRow).where(DataRow.id == data_id))
            ).scalar_one_or_none()
        if row is None:
            raise Problem(404, "mp.data.not_found", f"no data {data_id}")
        return _data_json(row)

    return router


def _datatype_json(r: DatatypeRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "version": r.version,
        "schema": r.schema,
        "hash": r.hash,
        "created_us": str(r.created_us),
    }
