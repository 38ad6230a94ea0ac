"""OpenTelemetry helpers: spans around commands, and trace context carried in event metadata.

The command side calls :func:`trace_metadata` when it builds an event's metadata, so the W3C
``traceparent`` of the request travels with the event; projections, sagas and the relay call
:func:`context_from_metadata` to continue that trace (SPEC §8). Without an exporter configured
the spans are still created (so ids exist and propagate) and simply not shipped anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_configured = False
TRACER_NAME = "cairn"


def configure_tracing() -> None:
    """Install an SDK tracer provider once per process, so spans get real ids.

    Exporters are left to the standard ``OTEL_*`` environment / a distro; cairn only needs ids
    that propagate through event metadata.
    """
    global _configured
    if _configured:
        return
    _configured = True
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    trace.set_tracer_provider(TracerProvider())


_tracer: tuple[trace.TracerProvider, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    """cairn's tracer, made once per tracer provider (``trace.get_tracer`` builds a new
    Tracer and instrumentation scope on every call, and the API asks once per request)."""
    global _tracer
    provider = trace.get_tracer_provider()
    if _tracer is None or _tracer[0] is not provider:
        _tracer = (provider, trace.get_tracer(TRACER_NAME))
    return _tracer[1]


def trace_metadata() -> dict[str, str]:
    """``{"traceparent": …}`` (and ``tracestate``) for the active span; ``{}`` if none."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def context_from_metadata(metadata: Mapping[str, Any] | None) -> otel_context.Context:
    """The trace context an event was recorded in (an empty context when it carries none)."""
    carrier = {k: str(v) for k, v in (metadata or {}).items() if k in ("traceparent", "tracestate")}
    return _propagator.extract(carrier)


@contextmanager
def span(
    name: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span]:
    """A span, as a child of the trace recorded in ``metadata`` when given."""
    ctx = context_from_metadata(metadata) if metadata is not None else None
    with tracer().start_as_current_span(
        name, context=ctx, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


def traceparent_from_headers(headers: Mapping[str, str]) -> otel_context.Context:
    """The caller's trace context from HTTP headers (W3C ``traceparent``)."""
    return _propagator.extract({k.lower(): v for k, v in headers.items()})
