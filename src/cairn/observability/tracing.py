"""OpenTelemetry: spans along an order's path, trace context in event metadata, and exporters
configured from the standard ``OTEL_*`` variables (SPEC §8, §16).

The command side records the W3C ``traceparent`` of the command's span in every event's
metadata; projections, sagas and the relay continue that trace from it (:func:`span`,
:func:`batch_span`), so one trace follows an order from the HTTP request to the broker.

What leaves the process (:func:`configure_tracing`, called by ``create_app`` and
``cairn worker``; :func:`shutdown_tracing` flushes it when ``cairn serve`` / ``cairn worker``
stop):

- ``OTEL_TRACES_EXPORTER``: ``otlp``, ``console`` or ``none`` (a comma-separated list is
  allowed). Unset: ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, else ``none``.
- ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf``
  (default) or ``grpc``. The exporter itself reads the endpoint, headers, timeout, compression
  and certificate variables; a ``BatchSpanProcessor`` (``OTEL_BSP_*``) sends the spans.
- ``OTEL_SERVICE_NAME`` (default ``cairn``), ``OTEL_RESOURCE_ATTRIBUTES``; ``service.version``
  is cairn's version unless given there.

With no exporter, sampling defaults to ``parentbased_always_off`` (unless
``OTEL_TRACES_SAMPLER`` says otherwise): spans still get ids, so the trace context travels in
event metadata and broker headers, but a request that arrives without a sampled
``traceparent`` records nothing (the cheap, non-recording path).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from cairn.errors import ApplicationError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_propagator = TraceContextTextMapPropagator()
TRACER_NAME = "cairn"
DEFAULT_SERVICE_NAME: Final = "cairn"
EXPORTERS: Final = ("otlp", "console", "none")
PROTOCOLS: Final = ("http/protobuf", "grpc")
#: The most links a batch span carries (the SDK's default ``OTEL_SPAN_LINK_COUNT_LIMIT``).
MAX_LINKS: Final = 128

Attributes = Mapping[str, str | int | float | bool]


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """What the ``OTEL_*`` variables ask for (see the module docstring)."""

    exporters: tuple[str, ...]
    protocol: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TracingConfig:
        raw = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if not raw:
            has_endpoint = any(
                environ.get(name)
                for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            )
            raw = "otlp" if has_endpoint else "none"
        names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
        unknown = [n for n in names if n not in EXPORTERS]
        if unknown:
            raise ApplicationError(
                "app.bad_configuration",
                f"OTEL_TRACES_EXPORTER={raw!r}: unknown {', '.join(unknown)} "
                f"(one or more of {', '.join(EXPORTERS)})",
            )
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        if "otlp" in names and protocol not in PROTOCOLS:
            raise ApplicationError(
                "app.bad_configuration",
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: cairn speaks {' or '.join(PROTOCOLS)}",
            )
        return cls(tuple(n for n in names if n != "none"), protocol)


def _exporter(name: str, protocol: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def build_tracer_provider(
    environ: Mapping[str, str] | None = None, *, service_version: str | None = None
) -> TracerProvider:
    """A tracer provider with the exporters, resource and sampler ``environ`` (default: the
    process environment) asks for; not installed globally."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    environ = os.environ if environ is None else environ
    config = TracingConfig.from_env(environ)
    if service_version is None:
        service_version = _cairn_version()
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over cairn's defaults.
    detected = Resource.create()
    attributes = dict(detected.attributes)
    if str(attributes.get("service.name", "")).startswith("unknown_service"):
        attributes["service.name"] = DEFAULT_SERVICE_NAME
    attributes.setdefault("service.version", service_version)
    resource = Resource(attributes, detected.schema_url)
    if config.exporters or environ.get("OTEL_TRACES_SAMPLER"):
        provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER
    else:
        provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    for name in config.exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, config.protocol)))
    return provider


def _cairn_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cairn")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


_installed: TracerProvider | None = None
#: True when cairn installed a provider that exports nothing and samples no new trace: then
#: the inner spans (command, append, projection, saga step, publish) are not even created, the
#: trace context in force is simply passed on (the HTTP request's server span still mints ids).
_quiet = False


def configure_tracing() -> None:
    """Install the tracer provider the ``OTEL_*`` variables describe, once per process (a
    provider installed before, e.g. by a distro or a test, is kept)."""
    global _installed, _quiet
    if _installed is not None:
        return
    from opentelemetry.sdk.trace import TracerProvider

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        _installed = current
        return
    _installed = build_tracer_provider()
    config = TracingConfig.from_env(os.environ)
    _quiet = not config.exporters and not os.environ.get("OTEL_TRACES_SAMPLER")
    trace.set_tracer_provider(_installed)


def shutdown_tracing() -> None:
    """Flush the spans still queued and stop the exporters (the process is stopping)."""
    if _installed is not None:
        _installed.shutdown()


# --- spans -----------------------------------------------------------------------------------

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


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span, if there is one (recording or not)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    flags = int(span_context.trace_flags)
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}"


def context_from_metadata(metadata: Mapping[str, Any] | None) -> otel_context.Context:
    """The trace context an event was recorded in (an empty context when it carries none)."""
    carrier = {k: str(v) for k, v in (metadata or {}).items() if k in ("traceparent", "tracestate")}
    return _propagator.extract(carrier)


def span(
    name: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
) -> AbstractContextManager[Span]:
    """A span, as a child of the trace recorded in ``metadata`` when given (a new trace when
    ``metadata`` carries none), else of the active span."""
    if _quiet:
        return _passed_on(metadata)
    ctx = context_from_metadata(metadata) if metadata is not None else None
    return tracer().start_as_current_span(name, context=ctx, kind=kind, attributes=attributes)


@contextmanager
def _passed_on(metadata: Mapping[str, Any] | None) -> Iterator[Span]:
    """No span: the active context, or the one recorded in ``metadata``, stays in force."""
    if metadata is None:
        yield trace.get_current_span()
        return
    ctx = context_from_metadata(metadata)
    token = otel_context.attach(ctx)
    try:
        yield trace.get_current_span(ctx)
    finally:
        otel_context.detach(token)


@contextmanager
def batch_span(
    name: str,
    metadatas: Iterable[Mapping[str, Any]],
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
) -> Iterator[Span]:
    """One span for a batch of events (a projection's apply, the relay's publish).

    When the events carrying a trace context all belong to one trace (the usual live batch),
    the span is a child of the latest of them. When they belong to several, it starts a trace
    of its own with a link to each one's context (at most :data:`MAX_LINKS`): the messaging
    conventions' shape for a batch, which costs one span whatever the batch's size.
    """
    if _quiet:
        yield trace.INVALID_SPAN
        return
    latest: dict[str, Mapping[str, Any]] = {}
    for metadata in metadatas:
        parent = metadata.get("traceparent")
        if isinstance(parent, str) and len(parent) >= 55:
            latest[parent[3:35]] = metadata  # keyed by trace id
    links: list[Link] = []
    if len(latest) == 1:
        ctx = context_from_metadata(next(iter(latest.values())))
    else:
        ctx = otel_context.Context()
        for metadata in list(latest.values())[-MAX_LINKS:]:
            linked = trace.get_current_span(context_from_metadata(metadata)).get_span_context()
            if linked.is_valid:
                links.append(Link(linked))
    with tracer().start_as_current_span(
        name, context=ctx, kind=kind, attributes=attributes, links=links
    ) as current:
        if current.is_recording():
            current.set_attribute("cairn.traces", len(latest))
        yield current


def traceparent_from_headers(headers: Mapping[str, str]) -> otel_context.Context:
    """The caller's trace context from HTTP headers (W3C ``traceparent``)."""
    return _propagator.extract({k.lower(): v for k, v in headers.items()})
