"""Which exporter the ``OTEL_*`` variables choose, what each one ships, and the batch span's
parent or links (SPEC §16)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cairn.errors import ApplicationError
from cairn.observability import tracing
from cairn.observability.tracing import TracingConfig, batch_span, build_tracer_provider

_SCRIPT = textwrap.dedent(
    """
    from cairn.observability.tracing import configure_tracing, shutdown_tracing, span
    configure_tracing()
    with span("command PlaceOrder"):
        with span("append order"):
            pass
    shutdown_tracing()
    """
)


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_console_exporter_prints_every_span() -> None:
    out = _run(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="cairn-test").stdout
    assert '"name": "command PlaceOrder"' in out
    assert '"name": "append order"' in out
    assert '"service.name": "cairn-test"' in out


def test_none_exports_nothing() -> None:
    done = _run(OTEL_TRACES_EXPORTER="none")
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("env", "exporters", "protocol"),
    [
        ({}, (), "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",), "http/protobuf"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
            ("otlp",),
            "http/protobuf",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"},
            (),
            "http/protobuf",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ("otlp", "console"),
            "grpc",
        ),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            ("otlp",),
            "http/protobuf",
        ),
    ],
)
def test_the_exporter_follows_the_otel_variables(
    env: dict[str, str], exporters: tuple[str, ...], protocol: str
) -> None:
    config = TracingConfig.from_env(env)
    assert (config.exporters, config.protocol) == (exporters, protocol)


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "jaeger"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
    ],
)
def test_an_exporter_cairn_cannot_make_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ApplicationError, match="OTEL_"):
        TracingConfig.from_env(env)


def test_without_an_exporter_an_unsampled_request_records_nothing_but_keeps_its_ids() -> None:
    provider = build_tracer_provider({}, service_version="9.9")
    root = provider.get_tracer("t").start_span("command PlaceOrder")
    assert not root.is_recording()
    assert root.get_span_context().is_valid
    assert provider.resource.attributes["service.name"] == "cairn"
    assert provider.resource.attributes["service.version"] == "9.9"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(tracing, "_tracer", None)
    monkeypatch.setattr(tracing, "_quiet", False)
    yield exporter
    monkeypatch.setattr(tracing, "_tracer", None)


def _meta(trace_id: int, span_id: int = 1) -> dict[str, str]:
    return {"traceparent": f"00-{trace_id:032x}-{span_id:016x}-01"}


def test_a_batch_of_one_trace_is_a_child_of_its_latest_event(
    recorded: InMemorySpanExporter,
) -> None:
    with batch_span("projection orders", [_meta(7, 1), {}, _meta(7, 2)]):
        pass
    (span,) = recorded.get_finished_spans()
    assert span.context.trace_id == 7
    assert span.parent is not None
    assert span.parent.span_id == 2
    assert not span.links


def test_a_batch_of_many_traces_starts_its_own_and_links_to_each(
    recorded: InMemorySpanExporter,
) -> None:
    with batch_span("projection orders", [_meta(7), _meta(8), _meta(7, 3), {}]):
        pass
    (span,) = recorded.get_finished_spans()
    assert span.parent is None
    assert span.context.trace_id not in (7, 8)
    assert sorted(link.context.trace_id for link in span.links) == [7, 8]
    assert span.attributes is not None
    assert span.attributes["cairn.traces"] == 2
