"""Each observation lands in its own labelled series, however often the series is used."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from cairn.observability.metrics import Metrics


def _samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name == name
    }


def test_repeated_observations_add_up_in_their_own_series() -> None:
    metrics = Metrics()
    metrics.observe_http("POST", "/api/v1/orders", 201, 0.01)
    metrics.observe_http("POST", "/api/v1/orders", 201, 0.02)
    metrics.observe_http("POST", "/api/v1/orders", 422, 0.01)
    metrics.observe_command("PlaceOrder", "ok", 0.01)
    metrics.observe_command("PlaceOrder", "ok", 0.01)
    metrics.observe_command("PlaceOrder", "rejected", 0.01)

    requests = _samples(metrics, "cairn_http_requests_total")
    assert requests[(("method", "POST"), ("route", "/api/v1/orders"), ("status", "201"))] == 2
    assert requests[(("method", "POST"), ("route", "/api/v1/orders"), ("status", "422"))] == 1
    commands = _samples(metrics, "cairn_command_duration_seconds_count")
    assert commands[(("command", "PlaceOrder"), ("outcome", "ok"))] == 2
    assert commands[(("command", "PlaceOrder"), ("outcome", "rejected"))] == 1
