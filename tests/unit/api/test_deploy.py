"""The shipped alert rules and dashboard only use metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from cairn.breakers import BreakerStatus
from cairn.observability.metrics import ComponentSnapshot, Metrics, ProjectionSample

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
_NAME = re.compile(r"\bcairn_[a-z_]+\b")


def exported_names() -> set[str]:
    metrics = Metrics()
    metrics.observe_command("CreateOrder", "ok", 0.01)
    metrics.observe_http("GET", "/healthz", 200, 0.001)
    metrics.observe_saga_transition("fulfilment", "failed")
    metrics.set_components(
        ComponentSnapshot(
            head_position=3,
            projections=[ProjectionSample("orders", 3, 0, 0.0, 0, 0, True)],
            sagas_by_status={"running": 1},
            relay_position=3,
            relay_lag_events=0,
            relay_state="running",
            breakers=[BreakerStatus("carrier", "closed", 0, 0, None)],
        )
    )
    text = metrics.render().decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("cairn_")
    }


def _used(text: str) -> set[str]:
    return set(_NAME.findall(text))


def test_alert_rules_use_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    assert _used(exprs)
    assert _used(exprs) <= exported_names()


def test_dashboard_uses_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "cairn-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert _used(exprs) <= exported_names()
