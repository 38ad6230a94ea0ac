"""SPEC §12, alerts: the shipped rules are valid Prometheus rules, and their unit tests
(tests/deploy/alerts_test.yml) pass: counters, not gauges that go down, are what an alert on an
event looks at, and a condition seen by several processes fires once. Checked by ``promtool``,
Prometheus' own tool (``deploy/prometheus/install-promtool.sh`` installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is not installed: deploy/prometheus/install-promtool.sh"
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False, timeout=60)


def test_promtool_accepts_the_alert_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_fail_rules_that_fire_once_per_process(tmp_path: Path) -> None:
    """The unit tests can fail: the same rule without its aggregation over the instances."""
    broken = RULES.read_text().replace(
        "expr: max without (instance, pod) (cairn_projection_lag_seconds) > 30",
        "expr: cairn_projection_lag_seconds > 30",
    )
    assert broken != RULES.read_text()
    (tmp_path / "deploy" / "prometheus").mkdir(parents=True)
    (tmp_path / "deploy" / "prometheus" / "alerts.yml").write_text(broken)
    (tmp_path / "tests" / "deploy").mkdir(parents=True)
    (tmp_path / "tests" / "deploy" / "alerts_test.yml").write_text(UNIT_TESTS.read_text())
    result = _promtool("test", "rules", str(tmp_path / "tests" / "deploy" / "alerts_test.yml"))
    assert result.returncode != 0
    assert "CairnProjectionLagging" in result.stdout + result.stderr
