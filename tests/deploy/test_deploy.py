"""deploy/: the compose files, nginx and Kubernetes manifests parse, point at real routes and agree with the app."""

import re
from pathlib import Path

import pytest
import yaml

from app.config import ConfigError, Settings, load_settings
from app.server import SHUTDOWN_MARGIN_S
from tests.helpers.models import REPO_ROOT

ROOT = REPO_ROOT
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.scale.yml"]
URL_PATH = re.compile(r"https?://[\w.-]+(?::\d+)?(/[\w./{}-]*)")


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_docs() -> list[dict]:
    return [doc for f in sorted(K8S.glob("*.yaml")) for doc in load_all(f)]


def of_kind(kind: str) -> list[dict]:
    return [d for d in k8s_docs() if d["kind"] == kind]


def containers(deployment: dict) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


def env_of(container: dict) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def compose(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def seconds(value) -> float:
    """A compose duration such as 25s, 1m30s, or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", value))


@pytest.fixture(scope="module")
def app_paths(client) -> set[str]:
    """Every path the app routes: the OpenAPI paths plus the operator and static routes outside it."""
    return set(client.get("/openapi.json").json()["paths"]) | {"/docs", "/static"}


def route_exists(path: str, app_paths: set[str]) -> bool:
    """An exact route, or a prefix that routes (nginx locations, mounts) match."""
    return path in app_paths or path == "/" or any(p.startswith(path.rstrip("/") + "/") for p in app_paths)


# ---- everything parses ----

@pytest.mark.parametrize("path", [*[DEPLOY / f for f in COMPOSE_FILES], *sorted(K8S.glob("*.yaml"))],
                         ids=lambda p: p.name)
def test_every_deploy_file_is_valid_yaml(path):
    docs = load_all(path)
    assert docs and all(isinstance(d, dict) for d in docs)
    if path.parent == K8S:
        assert all({"apiVersion", "kind"} <= set(d) for d in docs)
        assert all("name" in d.get("metadata", {}) for d in docs if d["kind"] != "Kustomization")


def test_the_kustomization_lists_existing_manifests():
    (kust,) = load_all(K8S / "kustomization.yaml")
    assert kust["resources"] and all((K8S / r).is_file() for r in kust["resources"])


# ---- every HTTP path they name is a route of the app ----

def referenced_paths() -> dict[str, set[str]]:
    """file -> the HTTP paths it names: probes, annotations, healthcheck URLs, nginx locations."""
    out: dict[str, set[str]] = {}
    for f in sorted(K8S.glob("*.yaml")):
        text = f.read_text()
        found = set(re.findall(r"^\s*path:\s*(/\S*)", text, re.M))
        found |= set(re.findall(r"prometheus\.io/path:\s*(/\S*)", text))
        out[f.name] = found
    for name in COMPOSE_FILES:
        out[name] = set(URL_PATH.findall((DEPLOY / name).read_text()))
    nginx = (DEPLOY / "nginx.conf").read_text()
    out["nginx.conf"] = set(re.findall(r"^\s*location\s+(?:=\s*)?(/\S*)\s*\{", nginx, re.M))
    return out


def test_the_deploy_files_name_paths_at_all():
    refs = referenced_paths()
    assert {"/readyz", "/healthz", "/metrics"} <= refs["deployment.yaml"] <= refs["deployment-gpu.yaml"] | {"/"}
    assert "/readyz" in refs["docker-compose.yml"] and "/api/v1/generate/stream" in refs["nginx.conf"]


@pytest.mark.parametrize("name, paths", sorted(referenced_paths().items()))
def test_every_referenced_path_is_a_route_of_the_app(name, paths, app_paths):
    missing = [p for p in paths if not route_exists(p, app_paths)]
    assert not missing, f"{name} names paths the app does not route: {missing}"


def test_the_probe_paths_answer_200_when_ready(client):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200


# ---- Kubernetes ----

@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployments_probe_readyz_and_healthz_and_bound_their_resources(deployment):
    (c,) = containers(deployment)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port_names == {"http": 8000}  # the Dockerfile's EXPOSE
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in port_names
    res = c["resources"]
    assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"])
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"].items()


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_the_kill_timeout_covers_prestop_and_the_drain(deployment):
    (c,) = containers(deployment)
    grace = float(env_of(c)["DIFFUSION_LAB_SHUTDOWN_GRACE_S"])
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    sleep = float(pre_stop[1]) if pre_stop[0] == "sleep" else 0.0
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= sleep + grace + \
        SHUTDOWN_MARGIN_S + 1


def test_the_gpu_variant_asks_for_a_gpu_and_runs_on_cuda():
    (gpu,) = [d for d in of_kind("Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "gpu"]
    (c,) = containers(gpu)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1 and env_of(c)["DIFFUSION_LAB_DEVICE"] == "cuda"
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["spec"]["template"]["spec"]["tolerations"])
    (cpu,) = [d for d in of_kind("Deployment") if d is not gpu and d["metadata"]["name"] == "diffusion-lab"]
    assert "nvidia.com/gpu" not in containers(cpu)[0]["resources"]["limits"]


def test_the_service_selects_every_deployment_and_the_hpa_targets_one():
    (svc,) = of_kind("Service")
    selector = svc["spec"]["selector"].items()
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    assert all(selector <= d["spec"]["template"]["metadata"]["labels"].items() for d in deployments.values())
    assert all(p["targetPort"] == "http" for p in svc["spec"]["ports"])
    (hpa,) = of_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] in deployments
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


# ---- the settings they set are real settings with valid values ----

def deploy_settings() -> list[tuple[str, dict[str, str]]]:
    """(where, {DIFFUSION_LAB_* name: literal value}) for every container and compose service."""
    out = []
    for d in of_kind("Deployment"):
        for c in containers(d):
            out.append((d["metadata"]["name"], {k: v for k, v in env_of(c).items() if k.startswith("DIFFUSION_LAB_")}))
    for name in COMPOSE_FILES:
        for service, spec in compose(name)["services"].items():
            env = {k: str(v) for k, v in (spec.get("environment") or {}).items() if k.startswith("DIFFUSION_LAB_")}
            out.append((f"{name}:{service}", env))
    return out


@pytest.mark.parametrize("where, env", deploy_settings(), ids=[w for w, _ in deploy_settings()])
def test_every_variable_set_is_a_setting_with_a_valid_value(where, env):
    fields = {f"DIFFUSION_LAB_{name.upper()}": name for name in Settings.model_fields}
    assert set(env) <= set(fields), f"{where}: unknown settings {set(env) - set(fields)}"
    literal = {fields[k]: v for k, v in env.items() if v is not None and "${" not in v}
    try:
        load_settings(load_model=False, **literal)
    except ConfigError as err:
        pytest.fail(f"{where}: {err}")


# ---- compose ----

def test_compose_builds_this_repository_and_stops_after_the_drain():
    for name in COMPOSE_FILES:
        app = compose(name)["services"]["app"]
        assert (DEPLOY / app["build"]["context"] / "Dockerfile").is_file()
        assert seconds(app["stop_grace_period"]) >= float(app["environment"]["DIFFUSION_LAB_SHUTDOWN_GRACE_S"]) + \
            SHUTDOWN_MARGIN_S


def test_the_single_replica_publishes_8000():
    (service,) = compose("docker-compose.yml")["services"].values()
    assert service["ports"] == ["8000:8000"]


def test_the_scaled_setup_runs_several_replicas_behind_nginx():
    services = compose("docker-compose.scale.yml")["services"]
    app, proxy = services["app"], services["proxy"]
    assert app["deploy"]["replicas"] > 1 and "ports" not in app  # only the proxy is published
    assert proxy["image"].startswith("nginx:") and proxy["depends_on"]["app"]["condition"] == "service_healthy"
    source, target = proxy["volumes"][0].split(":")[:2]
    assert (DEPLOY / source).resolve() == DEPLOY / "nginx.conf" and target == "/etc/nginx/nginx.conf"
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"server\s+app:8000\b", nginx), "the upstream must name the compose service and its port"
    assert re.search(r"location /api/v1/generate/stream \{[^}]*proxy_buffering off;", nginx)
    assert nginx.count("{") == nginx.count("}")
