"""deploy/k8s: every manifest is valid against the Kubernetes API schemas (kubernetes-validate,
bundled schemas, strict: unknown fields are errors), and the pieces fit together."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_files import K8S, compose, dockerfile_stages, k8s_documents, k8s_resource
from deploy_files import known_env_name as known

#: A Kubernetes version kubernetes-validate ships schemas for (1.25 … 1.37 in 1.37.0).
KUBERNETES_VERSION = "1.33.0"
DEPLOYMENTS = ["cairn-api", "cairn-worker"]


def _ids(item: tuple[Any, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("item", k8s_documents(), ids=_ids)
def test_manifest_validates_against_kubernetes_schema(item: tuple[Any, dict[str, Any]]) -> None:
    _, doc = item
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_schema_validation_rejects_an_unknown_field() -> None:
    doc = k8s_resource("Deployment", "cairn-api")
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    namespaces = {doc["metadata"].get("namespace") for _, doc in k8s_documents()}
    assert namespaces <= {kustomization["namespace"], None}


def _pod(name: str) -> dict[str, Any]:
    pod: dict[str, Any] = k8s_resource("Deployment", name)["spec"]["template"]
    return pod


def _container(name: str) -> dict[str, Any]:
    containers = _pod(name)["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _image_uid() -> int:
    user = dockerfile_stages()[-1].all("USER")[-1].args
    return int(user.split(":")[0])


@pytest.mark.parametrize("name", [*DEPLOYMENTS, "job:cairn-migrate"])
def test_pods_run_as_the_image_non_root_user_locked_down(name: str) -> None:
    if name.startswith("job:"):
        spec = k8s_resource("Job", name[4:])["spec"]["template"]["spec"]
    else:
        spec = _pod(name)["spec"]
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == _image_uid() != 0
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc.get("runAsNonRoot", True) is True
        assert sc.get("privileged", False) is False
        # A read-only root: /tmp is an emptyDir.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert "memory" in resources["limits"]


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_long_running_pods_have_resources_and_liveness(name: str) -> None:
    container = _container(name)
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert "livenessProbe" in container


def test_api_probes_and_command() -> None:
    container = _container("cairn-api")
    assert container["args"][:2] == ["serve", "--no-workers"]
    port = container["args"][container["args"].index("--port") + 1]
    (declared,) = container["ports"]
    assert str(declared["containerPort"]) == port
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert {p["port"] for p in probes.values()} == {declared["name"]}


def test_worker_command_and_process_probe() -> None:
    container = _container("cairn-worker")
    assert container["args"] == ["worker"]
    assert "exec" in container["livenessProbe"]


def test_worker_exports_metrics_on_its_declared_and_annotated_port() -> None:
    container = _container("cairn-worker")
    env = {e["name"]: e["value"] for e in container["env"]}
    (declared,) = container["ports"]
    assert declared["name"] == "metrics"
    assert str(declared["containerPort"]) == env["CAIRN_WORKER_METRICS_PORT"]
    template = k8s_resource("Deployment", "cairn-worker")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == env["CAIRN_WORKER_METRICS_PORT"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_migrate_job() -> None:
    job = k8s_resource("Job", "cairn-migrate")
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    (container,) = spec["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]


def _effective_env(name: str) -> dict[str, str]:
    """The pod's environment as the kubelet builds it: envFrom first, then env wins."""
    container = _container(name)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(k8s_resource("ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            secret = k8s_resource("Secret", source["secretRef"]["name"])
            env.update(secret.get("stringData", {}))
            env.update(secret.get("data", {}))
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "")
    return env


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_auto_migrate_is_off_on_long_running_pods(name: str) -> None:
    assert _effective_env(name)["CAIRN_AUTO_MIGRATE"] == "false"
    explicit = {e["name"]: e["value"] for e in _container(name)["env"]}
    assert explicit["CAIRN_AUTO_MIGRATE"] == "false"


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_pods_get_the_database_and_tokens_from_the_secret(name: str) -> None:
    env = _effective_env(name)
    config = k8s_resource("ConfigMap", "cairn-config")["data"]
    assert "CAIRN_DATABASE_URL" in env
    assert "CAIRN_DATABASE_URL" not in config
    assert "CAIRN_TOKENS" not in config


def test_every_env_name_is_a_setting() -> None:
    names: set[str] = set()
    for _, doc in k8s_documents():
        if doc["kind"] == "ConfigMap":
            names |= set(doc["data"])
        if doc["kind"] == "Secret":
            names |= set(doc.get("stringData", {})) | set(doc.get("data", {}))
    for name in DEPLOYMENTS:
        names |= {e["name"] for e in _container(name).get("env", [])}
    job = k8s_resource("Job", "cairn-migrate")["spec"]["template"]["spec"]["containers"][0]
    names |= {e["name"] for e in job.get("env", [])}
    assert names
    assert sorted(n for n in names if not known(n)) == []


def test_secret_values_are_marked_placeholders() -> None:
    secret = k8s_resource("Secret", "cairn-secrets")
    assert "data" not in secret
    for key, value in secret["stringData"].items():
        assert "CHANGE-ME" in value, key


def test_hpa_targets_the_api_deployment() -> None:
    hpa = k8s_resource("HorizontalPodAutoscaler", "cairn-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    deployment = k8s_resource("Deployment", target["name"])
    assert (target["apiVersion"], target["kind"]) == (deployment["apiVersion"], "Deployment")
    assert target["name"] == "cairn-api"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # A CPU utilisation target needs CPU requests on the pods.
    assert "cpu" in _container("cairn-api")["resources"]["requests"]


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, "only matchLabels selectors are checked"
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_pdb_selects_exactly_its_deployments_pods(name: str) -> None:
    pdb = k8s_resource("PodDisruptionBudget", name)
    selected = [
        d for d in DEPLOYMENTS if _matches(pdb["spec"]["selector"], _pod(d)["metadata"]["labels"])
    ]
    assert selected == [name]


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_deployment_selector_matches_its_pods(name: str) -> None:
    deployment = k8s_resource("Deployment", name)
    assert _matches(deployment["spec"]["selector"], _pod(name)["metadata"]["labels"])


def test_service_selects_only_api_pods_on_a_named_port() -> None:
    service = k8s_resource("Service", "cairn-api")
    selector = {"matchLabels": service["spec"]["selector"]}
    assert [d for d in DEPLOYMENTS if _matches(selector, _pod(d)["metadata"]["labels"])] == [
        "cairn-api"
    ]
    port_names = {p["name"] for p in _container("cairn-api")["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_connection_budget_fits_postgres_max_connections() -> None:
    config = k8s_resource("ConfigMap", "cairn-config")
    per_pod = int(config["data"]["CAIRN_DB_MAX_CONNECTIONS"])
    annotations = config["metadata"]["annotations"]
    available = int(annotations["cairn/postgres-max-connections"]) - int(
        annotations["cairn/postgres-reserved-connections"]
    )

    def peak_pods(name: str, replicas: int) -> int:
        rolling = k8s_resource("Deployment", name)["spec"]["strategy"]["rollingUpdate"]
        return replicas + int(rolling["maxSurge"])

    hpa = k8s_resource("HorizontalPodAutoscaler", "cairn-api")
    api = peak_pods("cairn-api", hpa["spec"]["maxReplicas"])
    worker = peak_pods(
        "cairn-worker", k8s_resource("Deployment", "cairn-worker")["spec"]["replicas"]
    )
    migrate = k8s_resource("Job", "cairn-migrate")["spec"]["parallelism"]
    for name in DEPLOYMENTS:
        assert "CAIRN_DB_MAX_CONNECTIONS" not in {e["name"] for e in _container(name)["env"]}
    total = (api + worker + migrate) * per_pod
    assert total <= available, f"({api} + {worker} + {migrate}) × {per_pod} > {available}"
    # The comment in configmap.yaml states the same sum.
    assert f"= {total} ≤ {available}" in (K8S / "configmap.yaml").read_text()


def _probe_code() -> str:
    command = _container("cairn-worker")["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    code: str = command[2]
    return code


def test_worker_probe_is_the_compose_worker_healthcheck() -> None:
    test = compose()["services"]["worker"]["healthcheck"]["test"]
    assert test[:4] == ["CMD", "python", "-c", _probe_code()]


def test_worker_probe_passes_for_a_live_worker_process_only() -> None:
    """The probe's code, pointed at a live process's /proc entry instead of PID 1's."""

    def probe(pid: int) -> int:
        code = _probe_code().replace("/proc/1/", f"/proc/{pid}/")
        return subprocess.run([sys.executable, "-c", code], check=False).returncode

    sleeper = "import time; time.sleep(30)"
    worker = subprocess.Popen([sys.executable, "-c", sleeper, "worker"])
    other = subprocess.Popen([sys.executable, "-c", sleeper, "serve"])
    try:
        time.sleep(0.2)
        assert probe(worker.pid) == 0
        assert probe(other.pid) == 1
        worker.kill()
        time.sleep(0.2)  # not yet reaped: a zombie
        assert probe(worker.pid) == 1
    finally:
        for process in (worker, other):
            process.kill()
            process.wait()
