"""deploy/k8s/services: seed 004's command, query and admin APIs as Deployments and Services,
valid against the Kubernetes schemas, each `cairn serve --only <role>` on its port, selected by
its own Service only."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_files import K8S, k8s_resource, known_env_name

from cairn.api.service_roles import parse_roles

SERVICES_DIR = K8S / "services"
KUBERNETES_VERSION = "1.33.0"
ROLES = {"command": 8080, "query": 8081, "admin": 8082}


def _documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SERVICES_DIR / "services.yaml").read_text()) if d]


def _resource(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def _labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(service: dict[str, Any], deployment: dict[str, Any]) -> bool:
    labels = _labels(deployment)
    return all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


@pytest.mark.parametrize("doc", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_validates_against_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_the_manifest_in_the_namespace() -> None:
    kustomization = yaml.safe_load((SERVICES_DIR / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["services.yaml"]
    assert {d["metadata"]["namespace"] for d in _documents()} == {kustomization["namespace"]}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_api_serves_its_role_on_its_port(role: str) -> None:
    name = f"cairn-{role}-api"
    container = _resource("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[:4] == ["serve", "--only", role, "--no-workers"]
    assert parse_roles(args[2]) == {role}
    port = ROLES[role]
    assert args[args.index("--port") + 1] == str(port)
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"name": "CAIRN_AUTO_MIGRATE", "value": "false"} in container["env"]
    assert all(known_env_name(e["name"]) for e in container["env"])
    assert _resource("Service", name)["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_service_selects_only_its_own_pods(role: str) -> None:
    service = _resource("Service", f"cairn-{role}-api")
    deployments = [d for d in _documents() if d["kind"] == "Deployment"]
    selected = [d["metadata"]["name"] for d in deployments if _selects(service, d)]
    assert selected == [f"cairn-{role}-api"]
    assert not _selects(service, k8s_resource("Deployment", "cairn-api"))
    assert not _selects(k8s_resource("Service", "cairn-api"), _resource("Deployment", selected[0]))


def test_the_query_api_may_read_a_replica_from_the_secret() -> None:
    container = _resource("Deployment", "cairn-query-api")["spec"]["template"]["spec"][
        "containers"
    ][0]
    replica = next(e for e in container["env"] if e["name"] == "CAIRN_READ_DATABASE_URL")
    assert replica["valueFrom"]["secretKeyRef"] == {
        "name": "cairn-secrets",
        "key": "CAIRN_READ_DATABASE_URL",
        "optional": True,
    }
