"""compose.yaml: valid against the Compose Specification's JSON schema, and the services run in
the right order with the right settings.

The schema is the compose-spec project's ``compose-spec.json`` (Apache-2.0), as vendored by the
``check-jsonschema`` package (pinned in pyproject.toml's dev extras; its licence file sits beside
the schema, ``check_jsonschema/builtin_schemas/vendor/licenses/LICENSE.compose-spec``), so the
test needs no network. It is validated with ``jsonschema``.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_files import COMPOSE, ROOT, compose, known_env_name, read_env_file

CAIRN_SERVICES = ["migrate", "api", "worker"]
LONG_RUNNING = ["api", "worker"]


def _schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return schema


def _validator() -> jsonschema.protocols.Validator:
    schema = _schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def test_compose_file_validates_against_the_compose_spec() -> None:
    errors = sorted(_validator().iter_errors(compose()), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("services", "api", "restart"), {"always": True}),
        (("services", "api", "helthcheck"), {"test": ["CMD", "true"]}),
        (("services", "migrate", "depends_on", "postgres", "condition"), "service_done"),
    ],
)
def test_schema_rejects_a_broken_compose_file(where: tuple[str, ...], value: object) -> None:
    broken = yaml.safe_load(COMPOSE.read_text())
    node = broken
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    assert list(_validator().iter_errors(broken))


def _service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose()["services"][name]
    return service


def test_required_services_and_images() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "nats", *CAIRN_SERVICES, "prometheus"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert "--jetstream" in services["nats"]["command"]
    for name, service in services.items():
        image = service["image"]
        assert ":" in image, name
        assert not image.endswith(":latest"), name


def test_migrate_is_a_one_off_job() -> None:
    migrate = _service("migrate")
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_start_after_migrate_succeeded(name: str) -> None:
    depends = _service(name)["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    for backing in ("postgres", "redis", "nats"):
        assert depends[backing]["condition"] == "service_healthy"


def test_commands() -> None:
    api = _service("api")["command"]
    assert api[:2] == ["serve", "--no-workers"]
    assert api[api.index("--host") + 1] == "0.0.0.0"
    port = api[api.index("--port") + 1]
    assert _service("api")["ports"] == [f"{port}:{port}"]
    assert _service("worker")["command"] == ["worker"]


def _env_files(name: str) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = _service(name)["env_file"]
    return files


def _environment(name: str) -> dict[str, str]:
    """As compose builds it: the env files in order, then ``environment`` wins."""
    env: dict[str, str] = {}
    for item in _env_files(name):
        path = ROOT / item["path"]
        if path.exists():
            env.update(read_env_file(path))
    env.update(_service(name).get("environment", {}))
    return env


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_auto_migrate_is_off(name: str) -> None:
    assert _service(name)["environment"]["CAIRN_AUTO_MIGRATE"] == "false"
    assert _environment(name)["CAIRN_AUTO_MIGRATE"] == "false"


@pytest.mark.parametrize("name", CAIRN_SERVICES)
def test_secrets_come_from_env_files_not_inline(name: str) -> None:
    inline = _service(name).get("environment", {})
    assert not {"CAIRN_TOKENS", "CAIRN_DATABASE_URL"} & set(inline)
    files = _env_files(name)
    assert files[0]["required"] is True
    assert (ROOT / files[0]["path"]).exists()
    # A git-ignored local file overrides the committed placeholders.
    assert files[-1]["required"] is False
    assert files[-1]["path"].endswith(".local.env")
    env = _environment(name)
    assert env["CAIRN_DATABASE_URL"].startswith("postgresql://")
    assert sorted(n for n in env if not known_env_name(n)) == []


def test_postgres_password_matches_the_database_url() -> None:
    postgres = read_env_file(ROOT / _service("postgres")["env_file"][0]["path"])
    url = _environment("api")["CAIRN_DATABASE_URL"]
    user, password, db = (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert url == f"postgresql://{user}:{password}@postgres:5432/{db}"
    assert "CAIRN_TOKENS" not in postgres


def test_healthchecks() -> None:
    services = compose()["services"]
    api = services["api"]["healthcheck"]["test"]
    assert api[0] == "CMD"
    assert any("/readyz" in part or "/healthz" in part for part in api)
    assert services["migrate"]["healthcheck"] == {"disable": True}
    for name in ("postgres", "redis", "nats", "worker"):
        assert services[name]["healthcheck"]["test"], name


def test_named_volumes_are_declared() -> None:
    spec = compose()
    declared = set(spec["volumes"])
    used = set()
    for service in spec["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used
    assert used == declared
    for name in ("postgres", "redis", "nats", "prometheus"):
        assert any(not v.startswith(".") for v in spec["services"][name]["volumes"]), name


def test_prometheus_loads_the_shipped_rules_and_scrapes_with_the_token() -> None:
    spec = compose()
    prometheus = spec["services"]["prometheus"]
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1) for v in prometheus["volumes"] if v.startswith(".")
    )
    assert mounts["./deploy/prometheus/alerts.yml"].startswith("/etc/prometheus/rules/")
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    rule_glob = re.escape(config["rule_files"][0]).replace(r"\*", "[^/]*")
    assert re.fullmatch(rule_glob, mounts["./deploy/prometheus/alerts.yml"])
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["cairn"]["static_configs"][0]["targets"] == ["api:8000"]
    (secret,) = prometheus["secrets"]
    for job in jobs.values():
        assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret['target']}"
    token = (ROOT / spec["secrets"][secret["source"]]["file"]).read_text().strip()
    tokens = dict(t.split("=", 1) for t in _environment("api")["CAIRN_TOKENS"].split(","))
    assert tokens[token] == "admin"  # /metrics needs an admin token


def test_prometheus_scrapes_every_worker_on_its_metrics_port() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "cairn-worker"]
    (lookup,) = job["dns_sd_configs"]
    assert lookup["names"] == ["worker"]
    env = _environment("worker")
    assert str(lookup["port"]) == env["CAIRN_WORKER_METRICS_PORT"]
    assert env["CAIRN_HOST"] == "0.0.0.0"


def test_local_overrides_are_git_ignored() -> None:
    ignore = (ROOT / "deploy" / "compose" / ".gitignore").read_text().split()
    assert "*.local.env" in ignore
