"""helm/locust-aiapi: lint, render, validate offline against Kubernetes' schemas, check the wiring.

There is no cluster here: `helm lint` and `helm template` render the chart, kubernetes-validate checks
every manifest against the API schemas (strict: unknown fields are errors), and the tests below
check what a cluster would need to run it: workers reach the master's Service, ports line up, the
API key reaches the containers only through `env`, every Locust command line parses in Locust.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ._support import ROOT
from .test_docker import in_image, mock_serves, option, parse_locust_args

CHART = ROOT / "helm" / "locust-aiapi"
HELM = ROOT / ".tools" / "bin" / "helm"
RELEASE, NAMESPACE = "load", "perf"
KEY = "sk-test-4f1c2a9e-never-in-a-pod-spec"
# the oldest Kubernetes the chart supports (Chart.yaml's kubeVersion), the one of the helm binary's
# kubectl, and the newest schemas kubernetes-validate has
OLDEST_KUBE = re.fullmatch(
    r">=(\d+\.\d+\.\d+)-0", yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
)
KUBE_VERSIONS = (OLDEST_KUBE.group(1), "1.33.0", kubernetes_validate.latest_version())  # type: ignore[union-attr]

COMBINATIONS: dict[str, list[str]] = {
    "defaults": [],
    "headless": ["--set", "locust.headless=true", "--set", "locust.users=200", "--set", "locust.spawnRate=20",
                 "--set", "locust.runTime=15m"],
    "autostart": ["--set", "locust.autostart=true", "--set", "locust.runTime=10m"],
    "hpa": ["--set", "worker.autoscaling.enabled=true", "--set", "worker.autoscaling.minReplicas=2"],
    "servicemonitor": ["--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=kps"],
    "servicemonitor-headless": ["--set", "serviceMonitor.enabled=true", "--set", "locust.headless=true"],
    "api-key": ["--set", f"apiKey.value={KEY}", "--set", "mock.enabled=false",
                "--set", "locust.host=https://api.openai.com/v1", "--set", "locust.model=gpt-4.1-mini"],
    "existing-secret": ["--set", "apiKey.existingSecret=ai-api-key",
                        "--set", "apiKey.existingSecretKey=token",
                        "--set", "mock.enabled=false", "--set", "locust.host=https://api.deepseek.com"],
    "builtin-embeddings": ["--set", "locustfile.builtin=embeddings.py"],
    "locustfile-from-file": ["--set-file", f"locustfile.content={ROOT / 'locustfiles' / 'embeddings.py'}"],
    "existing-configmap": ["--set", "locustfile.existingConfigMap=my-locustfile",
                           "--set", "mock.enabled=false",
                           "--set", "locust.extraArgs={--ai-max-retries=2,--ai-summary-json=summary.json}"],
    "everything": ["--set", "locust.headless=true", "--set", "worker.autoscaling.enabled=true",
                   "--set", "serviceMonitor.enabled=true", "--set", "apiKey.existingSecret=ai-api-key",
                   "--set-file", f"locustfile.content={ROOT / 'locustfiles' / 'chat.py'}",
                   "--set", "locust.extraEnv[0].name=AI_MAX_RETRIES", "--set", "locust.extraEnv[0].value=1"],
}  # fmt: skip


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM.exists(), "helm is fetched into .tools/ by `make tools` (part of `make test`)"
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, check=False, timeout=60)


@cache
def rendered(name: str) -> tuple[dict[str, Any], ...]:
    """The manifests of ``helm template`` for one combination of values."""
    done = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *COMBINATIONS[name])
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def one(manifests: Sequence[Mapping[str, Any]], kind: str, component: str) -> dict[str, Any]:
    found = [
        m for m in manifests
        if m["kind"] == kind and m["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]  # fmt: skip
    assert len(found) == 1, f"{len(found)} {kind} for {component}"
    return dict(found[0])


def container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def plain_env(c: Mapping[str, Any]) -> dict[str, str]:
    """The container's literal env values; a secretKeyRef becomes ``<secret NAME/KEY>``."""
    env = {}
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = f"<secret {ref['name']}/{ref['key']}>"
    return env


def parsed(deployment: Mapping[str, Any]) -> Any:
    c = container(deployment)
    return parse_locust_args(c["args"], plain_env(c))


# --- lint, render, validate ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_helm_lint_strict_passes(name: str) -> None:
    done = helm("lint", "--strict", str(CHART), *COMBINATIONS[name])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_every_manifest_is_valid_for_kubernetes(name: str) -> None:
    kinds = []
    for manifest in rendered(name):
        kinds.append(manifest["kind"])
        if manifest["apiVersion"] == "monitoring.coreos.com/v1":
            continue  # a CRD: no schema here; test_service_monitor_* check its structure instead
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
    assert {"Deployment", "Service"} <= set(kinds)


def test_the_schema_check_catches_a_mistake() -> None:
    master = one(rendered("defaults"), "Deployment", "master")
    broken = yaml.safe_load(yaml.safe_dump(master))
    broken["spec"]["template"]["spec"]["containers"][0]["port"] = 8089
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[1], strict=True)


def test_values_schema_rejects_a_typo_and_the_chart_refuses_impossible_settings() -> None:
    assert (
        "additional properties 'replica'" in helm("template", str(CHART), "--set", "worker.replica=5").stderr
    )
    for args, message in [
        (["--set", "apiKey.value=x", "--set", "apiKey.existingSecret=y"], "either value or existingSecret"),
        (["--set", "mock.enabled=false"], "no target: set locust.host"),
        (["--set", f"locust.extraArgs={{--ai-api-key={KEY}}}"], "must not be a command-line argument"),
    ]:
        done = helm("template", str(CHART), *args)
        assert done.returncode != 0 and message in done.stderr, done.stderr
        assert KEY not in done.stderr


# --- wiring -------------------------------------------------------------------------------------


def service_port(service: Mapping[str, Any], name: str) -> dict[str, Any]:
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == name]
    return dict(port)


def container_port(deployment: Mapping[str, Any], name: str) -> int:
    (port,) = [p["containerPort"] for p in container(deployment).get("ports", []) if p["name"] == name]
    return int(port)


def selects(selector: Mapping[str, str], deployment: Mapping[str, Any]) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_workers_find_the_master_through_its_service(name: str) -> None:
    manifests = rendered(name)
    master_deployment = one(manifests, "Deployment", "master")
    worker_deployment = one(manifests, "Deployment", "worker")
    service = one(manifests, "Service", "master")
    master, worker = parsed(master_deployment), parsed(worker_deployment)

    assert master.master and worker.worker
    assert worker.master_host == service["metadata"]["name"]
    port = service_port(service, "master")
    assert worker.master_port == port["port"]
    assert container_port(master_deployment, port["targetPort"]) == master.master_bind_port
    # the Service reaches the master pod, and only it
    assert selects(service["spec"]["selector"], master_deployment)
    assert not selects(service["spec"]["selector"], worker_deployment)
    assert worker.locustfile == master.locustfile
    if not master.locustfile.startswith("/home/locust/mnt/"):  # not from a ConfigMap: from the image
        assert in_image(master.locustfile).is_file()


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_service_ports_are_the_ports_the_master_listens_on(name: str) -> None:
    manifests = rendered(name)
    deployment, service = one(manifests, "Deployment", "master"), one(manifests, "Service", "master")
    master = parsed(deployment)
    listening = {"master": master.master_bind_port}
    if master.headless:
        listening["metrics"] = master.ai_metrics_port  # headless: /metrics on its own port
    else:
        listening["web"] = master.web_port  # web UI: /metrics on the web port
    assert master.ai_metrics_host == "0.0.0.0"
    declared = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    assert declared == listening
    assert {
        p["name"]: container_port(deployment, p["targetPort"]) for p in service["spec"]["ports"]
    } == listening


@pytest.mark.parametrize("name", ["servicemonitor", "servicemonitor-headless", "everything"])
def test_service_monitor_scrapes_the_master_service_where_it_serves_metrics(name: str) -> None:
    manifests = rendered(name)
    (monitor,) = [m for m in manifests if m["kind"] == "ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"selector", "namespaceSelector", "endpoints"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    wanted = monitor["spec"]["selector"]["matchLabels"]
    services = [
        m for m in manifests
        if m["kind"] == "Service" and all(m["metadata"]["labels"].get(k) == v for k, v in wanted.items())
    ]  # fmt: skip
    assert [s["metadata"]["name"] for s in services] == [f"{RELEASE}-locust-aiapi-master"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert set(endpoint) == {"port", "path", "interval", "scrapeTimeout"}
    assert endpoint["path"] == "/metrics"
    master_deployment = one(manifests, "Deployment", "master")
    master = parsed(master_deployment)
    serving = master.ai_metrics_port if master.headless else master.web_port
    target = service_port(services[0], endpoint["port"])["targetPort"]
    assert container_port(master_deployment, target) == serving
    if name == "servicemonitor":
        assert monitor["metadata"]["labels"]["release"] == "kps"


def test_no_service_monitor_unless_asked() -> None:
    assert not [m for m in rendered("defaults") if m["kind"] == "ServiceMonitor"]


@pytest.mark.parametrize("name", ["api-key", "existing-secret", "everything"])
def test_the_api_key_reaches_the_containers_only_through_env(name: str) -> None:
    manifests = rendered(name)
    secrets = [m for m in manifests if m["kind"] == "Secret"]
    if name == "api-key":
        (secret,) = secrets
        assert base64.b64decode(secret["data"]["api-key"]).decode() == KEY
        ref = {"name": secret["metadata"]["name"], "key": "api-key"}
    else:
        assert secrets == []  # the existing Secret is used, not shadowed
        ref = {"name": "ai-api-key", "key": "token" if name == "existing-secret" else "api-key"}
    for component in ("master", "worker"):  # the master sends its --ai-* options to the workers
        c = container(one(manifests, "Deployment", component))
        (var,) = [v for v in c["env"] if v["name"] == "OPENAI_API_KEY"]
        assert var == {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": ref}}
        words = " ".join([*c.get("command", []), *c["args"]])
        assert "api-key" not in words and "OPENAI" not in words
        assert (
            parsed(one(manifests, "Deployment", component)).ai_api_key
            == f"<secret {ref['name']}/{ref['key']}>"
        )
    outside_secrets = yaml.safe_dump_all([m for m in manifests if m["kind"] != "Secret"])
    assert KEY not in outside_secrets and base64.b64encode(KEY.encode()).decode() not in outside_secrets


def test_no_api_key_no_secret_and_no_key_variable() -> None:
    manifests = rendered("defaults")
    assert not [m for m in manifests if m["kind"] == "Secret"]
    for component in ("master", "worker"):
        assert "OPENAI_API_KEY" not in plain_env(container(one(manifests, "Deployment", component)))


def test_notes_tell_how_to_reach_the_ui_and_metrics_and_never_show_the_key() -> None:
    def notes(*args: str) -> str:
        done = helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.split("NOTES:", 1)[1]

    service = f"{RELEASE}-locust-aiapi-master"
    web = notes("--set", f"apiKey.value={KEY}", "--set", "locust.host=https://api.openai.com/v1")
    assert f"kubectl -n {NAMESPACE} port-forward service/{service} 8089:8089" in web
    assert "http://127.0.0.1:8089/metrics" in web
    assert f"scale deployment/{RELEASE}-locust-aiapi-worker" in web
    assert KEY not in web
    headless = notes("--set", "locust.headless=true", "--set", "metrics.port=9700")
    assert f"port-forward service/{service} 9700:9700" in headless
    assert "curl http://127.0.0.1:9700/metrics" in headless
    assert "maxReplicas" in notes("--set", "worker.autoscaling.enabled=true")


# --- what the master is told to do ----------------------------------------------------------------


def test_defaults_run_the_image_locustfile_against_the_mock_with_the_web_ui() -> None:
    manifests = rendered("defaults")
    master = parsed(one(manifests, "Deployment", "master"))
    mock_service = one(manifests, "Service", "mock")
    mock_deployment = one(manifests, "Deployment", "mock")
    assert not master.headless and not master.autostart
    assert (
        master.host
        == f"http://{mock_service['metadata']['name']}:{service_port(mock_service, 'http')['port']}"
    )
    assert container_port(mock_deployment, service_port(mock_service, "http")["targetPort"]) == int(
        option(container(mock_deployment)["args"], "--port") or 0
    )
    assert in_image(master.locustfile).name == "chat.py" and in_image(master.locustfile).is_file()
    assert one(manifests, "Deployment", "worker")["spec"]["replicas"] == 3


def test_mock_command_line_starts_the_real_mock_server() -> None:
    mock = container(one(rendered("defaults"), "Deployment", "mock"))
    assert mock["command"] == ["locust-aiapi-mock"]
    assert option(mock["args"], "--bind") == "0.0.0.0"
    mock_serves(mock["args"])


def test_headless_runs_the_configured_load_once_every_worker_is_there() -> None:
    master = parsed(one(rendered("headless"), "Deployment", "master"))
    assert master.headless
    assert (master.num_users, master.spawn_rate, master.run_time) == (200, 20.0, 15 * 60)
    assert master.expect_workers == 3
    autostart = parsed(one(rendered("autostart"), "Deployment", "master"))
    assert autostart.autostart and not autostart.headless and autostart.run_time == 600


def test_autoscaled_workers_get_users_through_rebalancing() -> None:
    manifests = rendered("hpa")
    worker = one(manifests, "Deployment", "worker")
    (hpa,) = [m for m in manifests if m["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": worker["metadata"]["name"]}  # fmt: skip
    assert hpa["spec"]["minReplicas"] == 2
    assert "replicas" not in worker["spec"]  # the HPA owns it; a fixed count would fight it
    assert container(worker)["resources"]["requests"]["cpu"]  # CPU utilisation needs a request
    assert parsed(one(manifests, "Deployment", "master")).enable_rebalancing
    assert not parsed(one(rendered("defaults"), "Deployment", "master")).enable_rebalancing


@pytest.mark.parametrize("name", ["locustfile-from-file", "existing-configmap", "everything"])
def test_locustfile_comes_from_the_configmap_mounted_where_locust_looks(name: str) -> None:
    manifests = rendered(name)
    for component in ("master", "worker"):
        deployment = one(manifests, "Deployment", component)
        locustfile = Path(parsed(deployment).locustfile)
        (mount,) = [m for m in container(deployment)["volumeMounts"] if m["name"] == "locustfile"]
        assert mount["readOnly"] and locustfile.parent == Path(mount["mountPath"])
        (volume,) = [
            v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "locustfile"
        ]
        if name == "existing-configmap":
            assert volume["configMap"]["name"] == "my-locustfile"
            continue
        (configmap,) = [m for m in manifests if m["kind"] == "ConfigMap"]
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]
        source = "embeddings.py" if name == "locustfile-from-file" else "chat.py"
        assert configmap["data"][locustfile.name] == (ROOT / "locustfiles" / source).read_text().rstrip("\n")
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert "checksum/locustfile" in annotations  # a new locustfile restarts the pods


def test_extra_args_and_env_reach_locust() -> None:
    master = parsed(one(rendered("existing-configmap"), "Deployment", "master"))
    assert master.ai_max_retries == 2 and master.ai_summary_json == "summary.json"
    manifests = rendered("everything")
    for component in ("master", "worker"):
        env = plain_env(container(one(manifests, "Deployment", component)))
        assert env["AI_MAX_RETRIES"] == "1"
    assert parsed(one(rendered("api-key"), "Deployment", "worker")).ai_model == "gpt-4.1-mini"


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_pods_run_non_root_on_a_read_only_root_with_writable_scratch(name: str) -> None:
    for deployment in (m for m in rendered(name) if m["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        c = container(deployment)
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        writable = {m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty_dirs}
        assert "/tmp" in writable
        if c["name"] != "mock":  # Locust's relative output paths (--csv, --html, --ai-*) land here
            assert c["workingDir"] in writable
