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
