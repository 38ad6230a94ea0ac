"""Prometheus metrics: every name in one place (SPEC §8).

Each app / worker process builds one :class:`Metrics` on its own registry (never the global
one, so tests can build several apps in one process). Request and command metrics are observed
as they happen; component metrics (log head, projections, sagas, relay) are read from the
components' ``status()`` at scrape time by :meth:`Metrics.refresh` and exposed by a collector,
so a scrape always shows the current truth and nothing polls in the background.

The registry also carries prometheus_client's standard collectors: ``process_*`` (CPU seconds,
resident and virtual memory, open and maximum file descriptors, start time; Linux only, read
from ``/proc`` at scrape time), ``python_info`` and ``python_gc_*``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cairn.breakers import BreakerStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class ProjectionSample:
    name: str
    position: int
    lag_events: int
    lag_seconds: float
    errors: int
    parked: int
    running: bool


@dataclass(slots=True)
class ComponentSnapshot:
    """What the components reported at the last scrape."""

    head_position: int | None = None
    store_up: bool = True
    projections: list[ProjectionSample] = field(default_factory=list)
    sagas_by_status: dict[str, int] = field(default_factory=dict)
    relay_position: int | None = None
    relay_lag_events: int | None = None
    #: ``running``, ``backing_off``, ``standby`` or ``stopped``; None without a relay.
    relay_state: str | None = None
    breakers: list[BreakerStatus] = field(default_factory=list)


class _ComponentCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = ComponentSnapshot()

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        up = GaugeMetricFamily("cairn_event_store_up", "1 when the event store answered")
        up.add_metric([], 1.0 if snap.store_up else 0.0)
        yield up
        if snap.head_position is not None:
            # A counter: rate(cairn_events_appended_total[1m]) is the append rate.
            appended = CounterMetricFamily(
                "cairn_events_appended", "Events in the $all log (its head position)"
            )
            appended.add_metric([], float(snap.head_position))
            yield appended
            head = GaugeMetricFamily("cairn_log_head_position", "Head position of the $all log")
            head.add_metric([], float(snap.head_position))
            yield head
        pos = GaugeMetricFamily(
            "cairn_projection_position", "Checkpoint of each projection", labels=["projection"]
        )
        lag = GaugeMetricFamily(
            "cairn_projection_lag_events", "Events behind the log head", labels=["projection"]
        )
        lag_s = GaugeMetricFamily(
            "cairn_projection_lag_seconds",
            "Age of the oldest unprocessed event",
            labels=["projection"],
        )
        parked = GaugeMetricFamily(
            "cairn_projection_parked_events", "Parked (dead-lettered) events", labels=["projection"]
        )
        errors = GaugeMetricFamily(
            "cairn_projection_errors",
            "Handler errors seen by each projection",
            labels=["projection"],
        )
        running = GaugeMetricFamily(
            "cairn_projection_running", "1 while the projection is running", labels=["projection"]
        )
        for p in snap.projections:
            pos.add_metric([p.name], float(p.position))
            lag.add_metric([p.name], float(p.lag_events))
            lag_s.add_metric([p.name], float(p.lag_seconds))
            parked.add_metric([p.name], float(p.parked))
            errors.add_metric([p.name], float(p.errors))
            running.add_metric([p.name], 1.0 if p.running else 0.0)
        yield from (pos, lag, lag_s, parked, errors, running)
        sagas = GaugeMetricFamily("cairn_sagas", "Sagas by status", labels=["status"])
        for status, count in sorted(snap.sagas_by_status.items()):
            sagas.add_metric([status], float(count))
        yield sagas
        if snap.relay_position is not None:
            rp = GaugeMetricFamily("cairn_relay_position", "Relay checkpoint (published up to)")
            rp.add_metric([], float(snap.relay_position))
            yield rp
        if snap.relay_lag_events is not None:
            rl = GaugeMetricFamily("cairn_relay_lag_events", "Events not yet published")
            rl.add_metric([], float(snap.relay_lag_events))
            yield rl
        if snap.relay_state is not None:
            state = GaugeMetricFamily(
                "cairn_relay_state", "1 for the relay's current state", labels=["state"]
            )
            for name in RELAY_STATES:
                state.add_metric([name], 1.0 if name == snap.relay_state else 0.0)
            yield state
        yield from _breaker_metrics(snap.breakers)


#: The relay's states (cairn.relay.RelayState), each a series of ``cairn_relay_state``.
RELAY_STATES = ("running", "backing_off", "standby", "stopped")
#: ``cairn_circuit_breaker_state`` values.
BREAKER_STATE_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


def _breaker_metrics(breakers: Iterable[BreakerStatus]) -> Iterable[Metric]:
    """Per breaker: its state, failures in a row, and how often it opened (a counter, so an
    alert sees an opening even when it closed again between two scrapes)."""
    state = GaugeMetricFamily(
        "cairn_circuit_breaker_state",
        "Circuit breaker state: 0 closed, 1 half-open, 2 open",
        labels=["breaker"],
    )
    failures = GaugeMetricFamily(
        "cairn_circuit_breaker_failures", "Failures in a row", labels=["breaker"]
    )
    openings = CounterMetricFamily(
        "cairn_circuit_breaker_openings", "Times the breaker opened", labels=["breaker"]
    )
    for b in breakers:
        state.add_metric([b.name], BREAKER_STATE_VALUES[b.state])
        failures.add_metric([b.name], float(b.failures))
        openings.add_metric([b.name], float(b.openings))
    yield from (state, failures, openings)


class Metrics:
    """The metrics of one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.http_requests = Counter(
            "cairn_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "cairn_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.grpc_requests = Counter(
            "cairn_grpc_requests",
            "gRPC calls by method (cairn.v1.Orders/CreateOrder) and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.grpc_latency = Histogram(
            "cairn_grpc_request_duration_seconds",
            "gRPC unary call latency by method",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.command_latency = Histogram(
            "cairn_command_duration_seconds",
            "Command latency by type and outcome"
            " (ok, rejected, invalid, conflict, error, replayed)",
            ["command", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.saga_transitions = Counter(
            "cairn_saga_transitions",
            "Sagas entering a status, counted by the process that moved them (sum over processes)",
            ["saga", "status"],
            registry=self.registry,
        )
        self._components = _ComponentCollector()
        self.registry.register(self._components)
        #: Labelled children by (metric, label values): ``labels()`` validates and locks
        #: on every call, several times per command and request (1.3% of ``cairn serve``'s
        #: samples under load). The label values are few (command types, routes, statuses).
        self._children: dict[tuple[int | str, ...], Any] = {}

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key: tuple[int | str, ...] = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def observe_command(self, command: str, outcome: str, seconds: float) -> None:
        self._child(self.command_latency, command, outcome).observe(seconds)

    def observe_saga_transition(self, saga_type: str, status: object) -> None:
        """The saga runner's ``on_transition`` hook (``status``: a ``SagaStatus``)."""
        value = getattr(status, "value", status)
        self._child(self.saga_transitions, saga_type, str(value)).inc()

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, method, route, str(status)).inc()
        self._child(self.http_latency, method, route).observe(seconds)

    def observe_grpc(self, method: str, code: str, seconds: float | None) -> None:
        """A finished call; ``seconds`` only for unary calls (a stream's length says nothing)."""
        self._child(self.grpc_requests, method, code).inc()
        if seconds is not None:
            self._child(self.grpc_latency, method).observe(seconds)

    def set_components(self, snapshot: ComponentSnapshot) -> None:
        self._components.snapshot = snapshot

    def render(self) -> bytes:
        return generate_latest(self.registry)


def sagas_by_status(counts: Mapping[str, int]) -> dict[str, int]:
    """Every status of SPEC §4 present (0 when none), so dashboards see flat lines, not gaps."""
    statuses = ("running", "completed", "compensating", "failed", "timed_out")
    result = dict.fromkeys(statuses, 0)
    for status, count in counts.items():
        result[status] = int(count)
    return result
