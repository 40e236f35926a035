"""Key-value table requests: what they do, and a fast way in for the common ones.

Table writes are the ledger's hot path: every member's application sends them, and
FastAPI's per-request machinery (dependency solving, parameter models, response
encoding) costs more CPU than the write itself. ``TablesApi`` is what a table request
does; ``TablesFastPath`` answers well-formed table requests straight from ASGI through
it, and everything else (an unexpected query string, a method the route lacks) goes on
to the FastAPI routes in ``charter.api.app``, which document the same requests in
OpenAPI and answer them through the same ``TablesApi``. Both ways give the same bytes.

Values are JSON: a PUT body is parsed and stored as its canonical JSON bytes (keys
sorted, no insignificant whitespace, UTF-8, no NaN or infinities), so two members
writing equal documents write equal bytes; a GET answers those bytes as they are.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final, Literal, cast, get_args
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from charter.api.fastpath import send_json, send_json_bytes
from charter.api.problems import Problem, bounded, problem_response
from charter.errors import CharterError
from charter.ledger.engine import TxStatus
from charter.ledger.engine.tx import MAX_KEY_BYTES, MAX_TABLE_BYTES, RESERVED_PREFIX, check_name
from charter.node.ledger_service import LedgerService, SubmitTicket
from charter.ops.metrics import NodeMetrics

__all__ = [
    "TABLES_PREFIX",
    "ConsistencyParam",
    "TablesApi",
    "TablesFastPath",
    "WaitParam",
    "canonical_json",
]

WaitParam = Literal["accepted", "committed"]
ConsistencyParam = Literal["local", "committed", "linearizable"]

TABLES_PREFIX: Final = "/api/v1/tables/"
_WAITS: Final = frozenset(get_args(WaitParam))
_CONSISTENCIES: Final = frozenset(get_args(ConsistencyParam))


class TablesApi:
    """Checks, canonical JSON, submit and bounded waits for table requests."""

    def __init__(
        self,
        service: LedgerService,
        metrics: NodeMetrics,
        *,
        max_body: int,
        request_timeout: float,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.max_body = max_body
        self.request_timeout = request_timeout

    async def put(self, table: str, key: str, body: bytes, wait: WaitParam) -> dict[str, str]:
        check_names(table, key)
        return await self._write(table, key, canonical_json(body), wait)

    async def delete(self, table: str, key: str, wait: WaitParam) -> dict[str, str]:
        check_names(table, key)
        return await self._write(table, key, None, wait)

    async def get(self, table: str, key: str, consistency: ConsistencyParam) -> bytes:
        check_names(table, key, reserved_ok=True)
        value = await bounded(
            self.service.get(table, key, consistency), "the read", self.request_timeout
        )
        if value is None:
            raise Problem(404, "api.not_found", f"no value at {table}/{key} ({consistency})")
        return value

    async def _write(
        self, table: str, key: str, value: bytes | None, wait: WaitParam
    ) -> dict[str, str]:
        started = time.perf_counter()
        ticket: SubmitTicket = await bounded(
            self.service.submit([(table, key, value)], wait=wait), "the write", self.request_timeout
        )
        if wait == "committed" and ticket.status is TxStatus.COMMITTED:
            self.metrics.observe_commit_latency(time.perf_counter() - started)
        answer = {"tx_id": ticket.tx_id, "status": ticket.status.value}
        if ticket.reason is not None:
            answer["reason"] = ticket.reason
        return answer


class TablesFastPath:
    """ASGI middleware answering well-formed table requests without FastAPI's routing.

    It decides from the method, path and query string alone (before any body byte is
    read) whether a request is one it answers; any other request passes through.
    """

    def __init__(self, app: ASGIApp, tables: TablesApi) -> None:
        self.app = app
        self.tables = tables

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(TABLES_PREFIX):
            await self.app(scope, receive, send)
            return
        request = _parse(scope)
        if request is None:
            await self.app(scope, receive, send)
            return
        method, table, key, option = request
        path: str = scope["path"]
        try:
            if method == "GET":
                value = await self.tables.get(table, key, cast(ConsistencyParam, option))
                await send_json_bytes(send, 200, value)
                return
            wait = cast(WaitParam, option)
            if method == "PUT":
                body = await read_body(scope, receive, self.tables.max_body)
                answer = await self.tables.put(table, key, body, wait)
            else:
                answer = await self.tables.delete(table, key, wait)
        except Problem as problem:
            await problem_response(problem, path)(scope, receive, send)
            return
        except CharterError as exc:
            await problem_response(Problem.from_error(exc), path)(scope, receive, send)
            return
        await send_json(send, 200, answer)


def _parse(scope: Scope) -> tuple[str, str, str, str] | None:
    """(method, table, key, wait or consistency) of a request this path answers, or None.

    The option is checked against its literal values here, so the casts above hold.
    """
    method: str = scope["method"]
    if method not in ("PUT", "GET", "DELETE"):
        return None
    table, sep, key = scope["path"][len(TABLES_PREFIX) :].partition("/")
    if not table or not sep or not key:
        return None
    name, default, allowed = (
        ("consistency", "committed", _CONSISTENCIES)
        if method == "GET"
        else ("wait", "accepted", _WAITS)
    )
    option = default
    query: bytes = scope.get("query_string", b"")
    if query:
        try:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return None
        if len(pairs) != 1 or pairs[0][0] != name or pairs[0][1] not in allowed:
            return None  # FastAPI validates (422) or ignores what is unusual
        option = pairs[0][1]
    return method, table, key, option


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refused with 413 as soon as it passes ``limit`` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Problem(400, "api.disconnected", "the client went away mid-body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def canonical_json(body: bytes) -> bytes:
    """The canonical JSON bytes of a request body; a 400 problem if it is not JSON."""

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(body.decode("utf-8"), parse_constant=refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "api.bad_json", f"the body is not JSON: {exc}") from None
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def too_large(limit: int) -> Problem:
    return Problem(413, "api.body_too_large", f"the body is larger than {limit} bytes")


def check_names(table: str, key: str, *, reserved_ok: bool = False) -> None:
    if not reserved_ok and table.startswith(RESERVED_PREFIX):
        raise Problem(
            403,
            "api.table.reserved",
            f"tables named {RESERVED_PREFIX}* belong to governance and the ledger",
        )
    try:
        check_name(table, "table", MAX_TABLE_BYTES, reserved_ok=reserved_ok)
        check_name(key, "key", MAX_KEY_BYTES, reserved_ok=True)
    except CharterError as exc:
        raise Problem(400, "api.invalid_name", exc.message) from None
