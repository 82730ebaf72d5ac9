"""Helpers for tests that run real Locust processes against the real mock server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEST_LOCUSTFILES = ROOT / "tests" / "locustfiles"


@dataclass
class LocustRun:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    @property
    def records(self) -> list[dict[str, Any]]:
        path = self.workdir / "requests.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    @property
    def summary(self) -> dict[str, Any]:
        return dict(json.loads((self.workdir / "summary.json").read_text()))

    @property
    def locust_stats(self) -> list[dict[str, Any]]:
        return list(json.loads((self.workdir / "locust.json").read_text()))


def locust_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "OPENAI_", "AI_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["AI_METRICS_PORT"] = "0"  # concurrent runs must not fight over the default 9646
    env.update(extra or {})
    return env


def run_locust(
    locustfile: str | Path,
    workdir: Path,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout_s: float = 120.0,
    with_reports: bool = True,
    cpu: int | None = None,
) -> LocustRun:
    """Run ``locust`` to completion; ``cpu`` pins it to one core (the mock gets the other)."""
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), *args]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    if with_reports:
        command += [
            "--ai-requests-jsonl", str(workdir / "requests.jsonl"),
            "--ai-summary-json", str(workdir / "summary.json"),
            "--json-file", str(workdir / "locust"),  # Locust appends .json
        ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, env=locust_env(env), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    return LocustRun(done.returncode, done.stdout, done.stderr, workdir)


def headless(host: str, users: int, run_time: str, *extra: str) -> list[str]:
    return ["--headless", "--host", host, "-u", str(users), "-r", str(max(users, 1)), "-t", run_time, *extra]


def mock_stats(url: str, cafile: str | None = None) -> dict[str, Any]:
    """The mock server's own counters (what it served, by outcome); over HTTPS trusting ``cafile``."""
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=cafile) if cafile else None
    with urllib.request.urlopen(url + "/mock/stats", timeout=5, context=context) as response:
        return dict(json.load(response))


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process may take it before you bind it)."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def terminate(process: subprocess.Popen[Any], timeout_s: float = 10.0) -> int:
    """SIGTERM (our servers and Locust shut down cleanly on it), SIGKILL after ``timeout_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@dataclass
class Distributed:
    """A Locust master and its workers, as child processes (outputs under ``workdir``)."""

    master: subprocess.Popen[str]
    workers: list[subprocess.Popen[str]]
    workdir: Path

    def wait(self, timeout_s: float = 90.0) -> int:
        code = self.master.wait(timeout=timeout_s)
        for worker in self.workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        return code

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text()

    @property
    def summary(self) -> dict[str, Any]:
        return dict(json.loads((self.workdir / "summary.json").read_text()))

    def worker_records(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for path in sorted(self.workdir.glob("requests.*.jsonl")):
            lines += [json.loads(line) for line in path.read_text().splitlines() if line]
        return lines


def start_distributed(
    locustfile: str | Path,
    workdir: Path,
    host: str,
    users: int,
    run_time: str,
    workers: int = 2,
    master_args: Sequence[str] = (),
) -> Distributed:
    port = free_port()

    def spawn(name: str, args: list[str]) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "locust", "-f", str(locustfile), *args]
        with open(workdir / f"{name}.log", "w") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                command, cwd=ROOT, env=locust_env(), stdout=log, stderr=subprocess.STDOUT, text=True
            )

    master = spawn(
        "master",
        [
            "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", str(workers), *headless(host, users, run_time),
            "--ai-summary-json", str(workdir / "summary.json"), *master_args,
        ],
    )  # fmt: skip
    worker_args = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    jsonl = ["--ai-requests-jsonl", str(workdir / "requests.jsonl")]
    started = [spawn(f"worker{i}", [*worker_args, *jsonl]) for i in range(workers)]
    return Distributed(master, started, workdir)
