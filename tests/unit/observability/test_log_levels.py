"""Hot-path log lines: a line below the configured level is not even built (``logs_at``), and a
command's ids are in the log context exactly while it runs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import structlog

from cairn.application import middleware
from cairn.application.handlers import Route
from cairn.application.messages import CommandContext, CommandResult, Envelope
from cairn.observability.logging import configure_logging, logs_at
from cairn.orders.domain import orders


class _Recorder:
    """Stands in for a module's logger: what each debug call was given."""

    def __init__(self) -> None:
        self.debug_lines: list[dict[str, Any]] = []

    def debug(self, event: str, **fields: Any) -> None:
        self.debug_lines.append({"event": event, **fields})


def _envelope() -> Envelope:
    route = Route("order", lambda c: f"order-{c.order_id}", lambda c: None)
    context = CommandContext(command_id="cmd-1", correlation_id="corr-1")
    return Envelope(orders.ShipOrder(order_id="o-1"), context, route, "order-o-1")


async def _handled(envelope: Envelope) -> CommandResult:
    return CommandResult(envelope.stream_id, 3, 30, [], envelope.context.command_id)


def test_logs_at_follows_the_configured_level() -> None:
    configure_logging("WARNING")
    assert (logs_at(logging.INFO), logs_at(logging.WARNING), logs_at(logging.ERROR)) == (
        False,
        True,
        True,
    )
    configure_logging("DEBUG")
    assert logs_at(logging.DEBUG)


async def test_a_commands_debug_line_is_not_built_when_debug_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(middleware, "_log", recorder)
    configure_logging("INFO")
    await middleware.LoggingMiddleware()(_envelope(), _handled)
    assert recorder.debug_lines == []
    configure_logging("DEBUG")
    await middleware.LoggingMiddleware()(_envelope(), _handled)
    (line,) = recorder.debug_lines
    assert line["event"] == "command_handled"
    assert (line["command"], line["command_id"], line["version"]) == ("ShipOrder", "cmd-1", 3)


async def test_a_commands_ids_are_in_the_log_context_while_it_runs_and_gone_after() -> None:
    seen: list[dict[str, Any]] = []

    async def handler(envelope: Envelope) -> CommandResult:
        seen.append(structlog.contextvars.get_contextvars())
        return await _handled(envelope)

    tokens = structlog.contextvars.bind_contextvars(correlation_id="outer")
    try:
        await middleware.LoggingMiddleware()(_envelope(), handler)
        after = structlog.contextvars.get_contextvars()
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    assert seen == [{"command_id": "cmd-1", "correlation_id": "corr-1"}]
    assert after == {"correlation_id": "outer"}


async def test_a_failed_commands_ids_are_gone_after_it_too() -> None:
    async def failing(envelope: Envelope) -> CommandResult:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await middleware.LoggingMiddleware()(_envelope(), failing)
    assert "command_id" not in structlog.contextvars.get_contextvars()
