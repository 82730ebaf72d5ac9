"""A real Prometheus server on loopback, and Locust processes for it to scrape, for end-to-end tests.

    prometheus = start_prometheus(tmp_path, [f"127.0.0.1:{port}"])   # scrape_interval="1s"
    try:
        prometheus.wait_for("up", lambda result: bool(result) and result[0]["value"][1] == "1")
        tokens = prometheus.query_value("sum(locust_aiapi_output_tokens_total)")
    finally:
        prometheus.stop()

(or ``with start_prometheus(...) as prometheus:``). It runs the ``prometheus`` binary found on PATH, or
``$PROMETHEUS_BINARY``: Debian's package, which ``make test`` installs when it is missing. Each server gets
a free port, its own directory under ``tmp_path`` (storage, log, and a JSON config: JSON is valid YAML).

Scraped series outlive their target only as stale markers: once the scraped process exits, an instant query
of ``x`` returns nothing, but ``last_over_time(x[2m])`` returns the last scraped value.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ._support import ROOT, free_port, locust_env, terminate

PROMETHEUS_BINARY = os.environ.get("PROMETHEUS_BINARY", "prometheus")
Result = list[dict[str, Any]]


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error."""


def _get_json(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:  # a bad query: Prometheus explains it in the JSON body
        body = exc.read().decode("utf-8", "replace")
        raise PrometheusError(f"HTTP {exc.code} from {url}: {body}") from None


class PrometheusServer:
    """A running ``prometheus``; ``url`` is its base URL (``http://127.0.0.1:PORT``)."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, workdir: Path) -> None:
        self.process = process
        self.url = url
        self.workdir = workdir

    def query(self, promql: str, at: float | None = None) -> Result:
        """Instant query (at ``at``, epoch seconds, or now): the result list of ``/api/v1/query``.

        A vector gives ``[{"metric": {...}, "value": [t, "v"]}, ...]``; a scalar comes back as one such
        item with empty ``metric``.
        """
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        data = _get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_value(self, promql: str, at: float | None = None) -> float | None:
        """The value of a query with at most one sample (None when it has none)."""
        result = self.query(promql, at)
        if len(result) > 1:
            raise PrometheusError(f"{promql!r} returned {len(result)} samples, expected one: {result}")
        return float(result[0]["value"][1]) if result else None

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[Result], bool],
        timeout_s: float = 30.0,
        interval_s: float = 0.25,
    ) -> Result:
        """Query until ``predicate(result)`` holds; returns that result or raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} still {result} after {timeout_s:g} s{self.log_tail()}")
            time.sleep(interval_s)

    def log_tail(self, chars: int = 3000) -> str:
        text = (self.workdir / "prometheus.log").read_text(errors="replace")[-chars:]
        return f"\nprometheus log:\n{text}" if text else ""

    def stop(self, timeout_s: float = 10.0) -> None:
        terminate(self.process, timeout_s)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _write_config(path: Path, targets: Sequence[str], scrape_interval: str, metrics_path: str,
                  basic_auth: tuple[str, str] | None, job_name: str) -> None:  # fmt: skip
    job: dict[str, Any] = {
        "job_name": job_name,
        "scrape_interval": scrape_interval,
        "scrape_timeout": scrape_interval,
        "metrics_path": metrics_path,
        "static_configs": [{"targets": list(targets)}],
    }
    if basic_auth is not None:
        job["basic_auth"] = {"username": basic_auth[0], "password": basic_auth[1]}
    config = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}}
    path.write_text(json.dumps({**config, "scrape_configs": [job]}, indent=2))


def _launch(workdir: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which(PROMETHEUS_BINARY)
    if binary is None:
        raise PrometheusError(
            f"{PROMETHEUS_BINARY!r} not found: `make test` installs it (Debian: apt-get install prometheus)"
        )
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=info",
    ]
    with open(workdir / "prometheus.log", "ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def _ready(server: PrometheusServer, timeout_s: float) -> bool:
    """True once /-/ready answers; False if the process exited first (e.g. its port was taken)."""
    deadline = time.monotonic() + timeout_s
    while server.process.poll() is None:
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise PrometheusError(f"Prometheus not ready after {timeout_s:g} s{server.log_tail()}")
        time.sleep(0.1)
    return False


def start_prometheus(
    tmp_path: Path,
    targets: Sequence[str],
    scrape_interval: str = "1s",
    *,
    metrics_path: str = "/metrics",
    basic_auth: tuple[str, str] | None = None,
    job_name: str = "locust",
    startup_timeout_s: float = 30.0,
) -> PrometheusServer:
    """Start Prometheus scraping ``targets`` (``host:port``) as job ``job_name``; wait until it is ready.

    Its config, storage and log go to a new ``prometheus-*`` directory under ``tmp_path`` (``.workdir``),
    so one test can run several.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=tmp_path))
    config = workdir / "prometheus.json"
    _write_config(config, targets, scrape_interval, metrics_path, basic_auth, job_name)
    for _attempt in range(3):  # the free port may be taken before Prometheus binds it
        port = free_port()
        server = PrometheusServer(_launch(workdir, config, port), f"http://127.0.0.1:{port}", workdir)
        if _ready(server, startup_timeout_s):
            return server
    raise PrometheusError(f"Prometheus exited at start, three times{server.log_tail()}")


class LocustProcess:
    """``python -m locust -f LOCUSTFILE ARGS...`` in the background; output in ``workdir/NAME.log``."""

    def __init__(
        self,
        locustfile: str | Path,
        args: Sequence[str],
        workdir: Path,
        *,
        name: str = "locust",
        env: Mapping[str, str] | None = None,
        cpu: int | None = None,
    ) -> None:
        command = [sys.executable, "-m", "locust", "-f", str(locustfile), *args]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        self.log_path = workdir / f"{name}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=locust_env(env), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout_s: float) -> int:
        """The exit code, once the process has ended by itself (TimeoutExpired after ``timeout_s``)."""
        return self.process.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM (Locust shuts down cleanly on it), SIGKILL after ``timeout_s``; the exit code."""
        code = terminate(self.process, timeout_s)
        self._log.close()
        return code

    def __enter__(self) -> LocustProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def http_get(
    url: str, *, auth: tuple[str, str] | None = None, timeout_s: float = 5.0
) -> tuple[int, dict[str, str], str]:
    """``(status, headers, body)`` of a GET that follows no redirect (a 302 comes back as 302)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_: Any) -> None:
            return None

    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


def wait_for_metrics(url: str, predicate: Callable[[str], bool], timeout_s: float = 30.0) -> str:
    """GET ``url`` until it answers 200 with a body for which ``predicate`` holds; returns the body."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _, body = http_get(url)
            if status == 200 and predicate(body):
                return body
            last = f"HTTP {status}: {body[:500]}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url}: {last}")
