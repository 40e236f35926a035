"""Structured JSON log lines: stdlib, structlog, uvicorn, the API's access log, state events."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
import uvicorn

from charter.api import NodeInfo, create_app
from charter.ledger.signatures import SignaturePolicy
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerSettings, LedgerStatus
from charter.node.raft_transport import Backoff
from charter.ops import NodeMetrics, StateEvents, configure_logging, watch_ledger

SETTINGS = LedgerSettings(
    signature_policy=SignaturePolicy(every_tx=100, every_ms=50),
    backoff=Backoff(base=0.01, cap=0.2),
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    structlog.reset_defaults()


def lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict)
        for key in ("timestamp", "level", "event"):
            assert key in record, record
        out.append(record)
    return out


def test_stdlib_structlog_and_uvicorn_lines_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(node="node-1", level="debug")
    logging.getLogger("charter.node.ledger_service").error(
        "ledger divergence",
        extra={"event": "ledger.divergence", "tx_id": "3.7", "root": b"\x01\x02"},
    )
    structlog.get_logger("charter.node").info("node.started", api="127.0.0.1:8080")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("uvicorn.access").info("ignored: the API logs api.request itself")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("charter.x").exception("failed", extra={"event": "x.failed"})
    captured = capsys.readouterr()
    assert captured.out == ""
    records = lines(captured.err)
    assert [r["event"] for r in records] == [
        "ledger.divergence",
        "node.started",
        "log",
        "x.failed",
    ]
    divergence, started, uvicorn_line, failed = records
    assert divergence["level"] == "error"
    assert divergence["node"] == "node-1"
    assert divergence["tx_id"] == "3.7"
    assert divergence["root"] == "0102"
    assert divergence["message"] == "ledger divergence"
    assert divergence["timestamp"].endswith("Z")
    assert started["api"] == "127.0.0.1:8080" and started["node"] == "node-1"
    assert uvicorn_line["message"] == "Started server process [42]"
    assert uvicorn_line["logger"] == "uvicorn.error"
    assert divergence["logger"] == "charter.node.ledger_service"
    assert "ValueError: boom" in failed["exception"]


def test_level_filters_and_reconfiguring_replaces_the_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(node="a", level="info")
    configure_logging(node="b", level="warning")
    logging.getLogger("charter.y").info("hidden", extra={"event": "y.info"})
    logging.getLogger("charter.y").warning("shown", extra={"event": "y.warning"})
    records = lines(capsys.readouterr().err)
    assert [(r["event"], r["node"]) for r in records] == [("y.warning", "b")]
    with pytest.raises(ValueError):
        configure_logging(level="loud")


def test_state_events() -> None:
    def s(**kw: Any) -> LedgerStatus:
        base: dict[str, Any] = dict(
            node_id=1, name="m", role="follower", term=1, leader=None, commit_index=0,
            applied_index=0, last_seqno=0, signed_upto=0, halted=False, alarms=0,
        )  # fmt: skip
        base.update(kw)
        return LedgerStatus(**base)

    ev = StateEvents()
    assert [e.name for e in ev.observe(s())] == ["raft.role_changed"]
    assert not ev.changed(s())
    assert [e.name for e in ev.observe(s(term=2, leader=2))] == ["raft.leader_changed"]
    assert [e.name for e in ev.observe(s(term=3, leader=1, role="leader"))] == [
        "raft.leader_changed",
        "raft.role_changed",
    ]
    assert [e.name for e in ev.observe(s(term=3, leader=1, role="leader", signed_upto=5))] == [
        "ledger.signature"
    ]
    halted = ev.observe(s(term=3, leader=1, role="leader", signed_upto=5, halted=True, alarms=1))
    assert [(e.name, e.level) for e in halted] == [("ledger.halted", logging.ERROR)]


async def test_running_node_logs_documented_events() -> None:
    stream = io.StringIO()
    configure_logging(node="node-1", level="debug", stream=stream)
    async with LocalLedgerNetwork("memory", settings=SETTINGS) as net:
        service = net.service(1)
        watcher = asyncio.create_task(watch_ledger(service))
        try:
            await net.elect()
            info = NodeInfo("node-1", "member-1", "00" * 32, 1, "http://node-1.test", "test")
            app = create_app(service, info, NodeMetrics(service))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://n1") as client:
                r = await client.put("/api/v1/tables/t/k", json=1, params={"wait": "committed"})
                assert r.status_code == 200
                await client.get("/api/v1/tables/t/missing")
            await net.until(lambda: '"ledger.signature"' in stream.getvalue())
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    records = lines(stream.getvalue())
    events = {r["event"] for r in records}
    assert {"raft.leader_changed", "raft.role_changed", "ledger.signature", "api.request"} <= events
    requests = [r for r in records if r["event"] == "api.request"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("PUT", "/api/v1/tables/t/k", 200),
        ("GET", "/api/v1/tables/t/missing", 404),
    ]
    assert all(r["duration_ms"] >= 0 and r["node"] == "node-1" for r in requests)
    leader = next(r for r in records if r["event"] == "raft.leader_changed")
    assert leader["leader"] in net.ids and leader["raft_id"] == 1


async def test_uvicorn_serving_the_app_logs_json() -> None:
    stream = io.StringIO()
    configure_logging(node="node-1", level="info", stream=stream)
    async with LocalLedgerNetwork("memory", size=1, settings=SETTINGS) as net:
        await net.elect()
        service = net.service(1)
        info = NodeInfo("node-1", "member-1", "00" * 32, 1, "http://127.0.0.1", "test")
        app = create_app(service, info, NodeMetrics(service))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # connections queue from here on: no need to wait for uvicorn
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                r = await client.put("/api/v1/tables/t/k", json={"a": 1})
                assert r.status_code == 200
                r = await client.get("/api/v1/nope")
                assert r.status_code == 404
                assert r.headers["content-type"] == "application/problem+json"
        finally:
            server.should_exit = True
            async with asyncio.timeout(10):
                await task
            sock.close()
    records = lines(stream.getvalue())
    uvicorn_lines = [r for r in records if r["logger"].startswith("uvicorn")]
    assert uvicorn_lines and all(r["event"] == "log" for r in uvicorn_lines)
    requests = [(r["method"], r["status"]) for r in records if r["event"] == "api.request"]
    assert requests == [("PUT", 200), ("GET", 404)]
    assert all(r["client"] == "127.0.0.1" for r in records if r["event"] == "api.request")


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


FIELDS = {"method": "GET", "path": "/x", "status": 200, "duration_ms": 1.5, "client": None}


def test_log_event_writes_the_line_logging_would(monkeypatch: pytest.MonkeyPatch) -> None:
    from charter.ops import log_event

    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # pytest's capture handlers
    buf = io.StringIO()
    configure_logging(stream=buf, node="n1")
    lg = logging.getLogger("charter.test.access")
    lg.info("%s", "GET /x 200", extra={"event": "api.request", **FIELDS})

    def no_record(*args: object, **kwargs: object) -> logging.LogRecord:
        raise AssertionError("the direct path builds no LogRecord")

    monkeypatch.setattr(lg, "makeRecord", no_record)
    log_event(lg, logging.INFO, "api.request", "GET /x 200", dict(FIELDS))
    log_event(lg, logging.DEBUG, "api.request", "GET /x 200", dict(FIELDS))  # below the level
    slow, fast = _lines(buf)
    assert list(slow) == list(fast)  # the same fields in the same order
    assert slow.pop("timestamp") <= fast.pop("timestamp")
    assert slow == fast
    assert fast["node"] == "n1" and fast["logger"] == "charter.test.access"


def test_log_event_logs_normally_when_another_handler_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from charter.ops import log_event

    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    buf = io.StringIO()
    configure_logging(stream=buf)
    lg = logging.getLogger("charter.test.watched")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    lg.addHandler(Keep())
    try:
        log_event(lg, logging.WARNING, "api.request", "GET /x 200", dict(FIELDS))
    finally:
        lg.handlers.clear()
    assert [
        (r.getMessage(), getattr(r, "event", None), getattr(r, "status", None)) for r in seen
    ] == [("GET /x 200", "api.request", 200)]
    (line,) = _lines(buf)
    assert (line["event"], line["level"], line["status"]) == ("api.request", "warning", 200)
