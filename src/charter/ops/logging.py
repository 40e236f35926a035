"""Structured logs: one JSON object per line on stderr, stdlib logging included.

Charter's services log with the standard ``logging`` module and name the event in
``extra={"event": "ledger.divergence", ...}``; the other ``extra`` fields become fields
of the line. A record without an ``event`` (a library's, uvicorn's) gets ``"event":
"log"`` and its text in ``message``. Code that prefers structlog calls
``structlog.get_logger().info("node.started", ...)``; both reach the same handler.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["LOG_LEVELS", "configure_logging", "log_event"]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_HANDLER_NAME = "charter.ops"


class _Direct:
    """What ``log_event`` needs to write a line the way the handler would."""

    __slots__ = ("chain", "handler")

    def __init__(self, handler: logging.StreamHandler[TextIO], chain: list[Processor]) -> None:
        self.handler = handler
        self.chain = chain

    def sole(self, logger: logging.Logger, level: int) -> bool:
        """True when this handler alone would see ``logger``'s record at ``level``, with
        no filter anywhere on the way."""
        handler = self.handler
        if handler.filters or level < handler.level:
            return False
        lg: logging.Logger | None = logger
        while lg is not None:
            if lg.filters or lg.disabled:
                return False
            if lg.parent is None:  # the root logger
                return len(lg.handlers) == 1 and lg.handlers[0] is handler
            if lg.handlers or not lg.propagate:
                return False
            lg = lg.parent
        return False


_direct: _Direct | None = None


def _stdlib_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A foreign (stdlib) record: its ``extra`` fields, and the event name if it set one."""
    record = event_dict.get("_record")
    if not isinstance(record, logging.LogRecord) or event_dict.get("_from_structlog"):
        return event_dict
    extras = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
    text = event_dict.get("event")  # ProcessorFormatter put the formatted message there
    if not isinstance(text, str):
        text = record.getMessage()
    event = extras.pop("event", None)
    event_dict["event"] = event if isinstance(event, str) and event else "log"
    event_dict["message"] = text
    for key, value in extras.items():
        event_dict.setdefault(key, value)
    if record.exc_info and "exception" not in event_dict:
        event_dict["exc_info"] = record.exc_info
    return event_dict


def _add_node(node: str | None) -> Processor:
    def add(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        if node is not None:
            event_dict.setdefault("node", node)
        return event_dict

    return add


def configure_logging(
    *,
    json: bool = True,
    level: str = "info",
    node: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the root stdlib logger to one handler on ``stream`` (stderr).

    Idempotent: calling again replaces the handler this function installed.
    """
    name = level.lower()
    if name not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; one of {', '.join(LOG_LEVELS)}")
    numeric = logging.getLevelNamesMapping()[name.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_node(node),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=_jsonable)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_stdlib_fields, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    global _direct
    # the formatter's chain for a foreign record, less what only such a record needs
    _direct = _Direct(handler, [*shared, structlog.processors.format_exc_info, renderer])
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name_ in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name_)
        lg.handlers.clear()
        lg.propagate = True
    # the API writes its own access log (``api.request``); uvicorn's would duplicate it
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def log_event(
    logger: logging.Logger, level: int, event: str, message: str, fields: dict[str, Any]
) -> None:
    """Log what ``logger.log(level, message, extra={"event": event, **fields})`` logs.

    When Charter's handler is the only one the record would reach, the line is rendered
    by the same processors without a ``LogRecord`` and the handler's formatting (which
    cost about a tenth of a busy node's event loop when the API logs every request);
    otherwise it is logged the ordinary way.
    """
    if not logger.isEnabledFor(level):
        return
    direct = _direct
    if direct is not None and direct.sole(logger, level):
        method = logging.getLevelName(level).lower()
        event_dict: Any = {"event": event, "message": message, **fields}
        for processor in direct.chain:
            event_dict = processor(logger, method, event_dict)
        handler = direct.handler
        try:
            with handler.lock or contextlib.nullcontext():
                handler.stream.write(f"{event_dict}{handler.terminator}")
                handler.flush()
            return
        except Exception:
            pass  # the ordinary way below reports the handler's trouble as logging does
    logger.log(level, "%s", message, extra={"event": event, **fields})


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)
