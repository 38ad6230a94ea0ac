"""Structured logs (structlog): one JSON object per line, with the request's correlation id
and, inside a span, its ``trace_id`` and ``span_id``.

``configure_logging(settings)`` is called by the entry points (``cairn serve``, ``cairn worker``,
``create_app``), never at import time. The correlation id lives in a context variable bound by the
HTTP middleware (:func:`bind_correlation_id`), so every log line of a request carries it, and the
command side can read it back with :func:`current_correlation_id`.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar, Token
from typing import Any

import structlog
from opentelemetry import trace

_correlation_id: ContextVar[str | None] = ContextVar("cairn_correlation_id", default=None)


def current_correlation_id() -> str | None:
    """The correlation id of the request being served, if any."""
    return _correlation_id.get()


def bind_correlation_id(value: str | None) -> Token[str | None]:
    return _correlation_id.set(value)


def reset_correlation_id(token: Token[str | None]) -> None:
    _correlation_id.reset(token)


def _add_correlation_id(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    cid = _correlation_id.get()
    if cid is not None and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = cid
    return event_dict


def _add_trace_ids(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``trace_id`` / ``span_id`` of the active span (recording or not), so a log line can be
    found from its trace and the other way round."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid and "trace_id" not in event_dict:
        event_dict["trace_id"] = f"{span_context.trace_id:032x}"
        event_dict["span_id"] = f"{span_context.span_id:016x}"
    return event_dict


#: The level :func:`configure_logging` set; None until then (structlog then writes every line).
_level: int | None = None


def logs_at(level: int) -> bool:
    """Whether a line at ``level`` is written. For a line on the hot path of every request or
    command: a filtered-out call still builds its fields (~4 µs a line)."""
    return _level is None or level >= _level


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and the standard library through one renderer on stderr."""
    global _level
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    _level = numeric
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        _add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Each module's logger is built once, at its first log line, not on every call (8% of
        # a busy API's CPU per command at INFO). Entry points configure before logging.
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # uvicorn's access log duplicates our request log line; its error log is kept.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
