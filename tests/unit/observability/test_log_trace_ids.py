"""Log lines carry the active span's ids (SPEC §8)."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider

from cairn.observability.logging import configure_logging, get_logger


def test_a_log_line_inside_a_span_carries_its_trace_and_span_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("command PlaceOrder") as span:
        get_logger("cairn.test.inside").info("inside")
    get_logger("cairn.test.outside").info("outside")
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines()[-2:])
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in outside
