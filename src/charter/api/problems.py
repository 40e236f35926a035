"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

``Problem`` is raised by routes; ``CharterError`` subclasses are mapped by their stable
``code``; FastAPI's validation errors and Starlette's HTTP errors are rewritten; anything
else becomes a 500 problem without a traceback (the traceback goes to the log).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from charter.errors import CharterError

__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "bounded",
    "install_problem_handlers",
    "problem_response",
    "status_for_code",
]

PROBLEM_JSON = "application/problem+json"
T = TypeVar("T")
RETRY_AFTER_SECONDS = 1

# Longest matching prefix wins; codes not listed answer 500.
_STATUS_BY_CODE: Mapping[str, int] = {
    "node.ledger.not_available": 503,
    "node.ledger.halted": 503,
    "node.ledger": 503,
    "ledger.engine.halted": 503,
    "ledger.engine.tx": 400,
    "ledger.engine.receipt_unavailable": 410,
    "consensus": 503,
    "mp.transfer.outbox_full": 503,
    "mp.blob.too_large": 413,
    "mp.blob.not_found": 404,
}
_RETRY_STATUSES = frozenset({503})


def status_for_code(code: str) -> int:
    best, status = -1, 500
    for prefix, st in _STATUS_BY_CODE.items():
        if (code == prefix or code.startswith(prefix + ".")) and len(prefix) > best:
            best, status = len(prefix), st
    return status


class Problem(Exception):
    """An error answer: HTTP status, stable code, human detail, optional extra members."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    @classmethod
    def from_error(cls, exc: CharterError) -> Problem:
        status = status_for_code(exc.code)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status in _RETRY_STATUSES else {}
        return cls(status, exc.code, exc.message, headers=headers)


async def bounded(work: Awaitable[T], what: str, seconds: float) -> T:
    """``work``'s result, or a 504 ``api.timeout`` problem once ``seconds`` have passed."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise Problem(504, "api.timeout", f"{what} took longer than {seconds:g} s") from None


def problem_response(problem: Problem, instance: str) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:charter:problem:{problem.code}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
        "instance": instance,
    }
    for key, value in problem.extra.items():
        body.setdefault(key, value)
    return Response(
        json.dumps(body, ensure_ascii=False).encode(),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _instance(request: Request) -> str:
    return request.url.path


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc, _instance(request))

    async def on_charter(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CharterError)
        return problem_response(Problem.from_error(exc), _instance(request))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}"
        problem = Problem(422, "api.validation", detail, extra={"errors": errors})
        return problem_response(problem, _instance(request))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "api.not_found", 405: "api.method_not_allowed"}.get(
            exc.status_code, f"api.http_{exc.status_code}"
        )
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.method} {request.url.path}"
        problem = Problem(exc.status_code, code, detail, headers=exc.headers)
        return problem_response(problem, _instance(request))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(CharterError, on_charter)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
