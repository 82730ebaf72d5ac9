"""How exactly does one Locust process measure TTFT while streaming at 100 / 500 / 1,000 users?

The mock server (pinned to one core) records when it wrote each first token; one Locust
process (pinned to the other core) records when that token arrived. Both stamps come from
CLOCK_MONOTONIC, so their difference is the measurement error of TTFT.

    .venv/bin/python benchmarks/stream_fidelity.py [--users 100 500 1000] [--run-time 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from locust_aiapi.mock import MockProcess

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile_stream.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    users: int
    requests: int
    chunks_per_s: float
    error_p50_ms: float
    error_p99_ms: float
    error_max_ms: float
    locust_cpu_pct: float
    mock_cpu_pct: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def run_level(users: int, run_time_s: int, mock_args: list[str], workdir: Path) -> Figures:
    truth = workdir / f"mock-{users}.jsonl"
    arrivals = workdir / f"client-{users}.jsonl"
    with MockProcess([*mock_args, "--record", str(truth)], cpu=1) as mock:
        mock_pid = mock.pid
        mock_cpu_start = cpu_seconds(mock_pid)
        command = [
            "taskset", "-c", "0", sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
            "--headless", "--host", mock.url, "-u", str(users), "-r", str(users),
            "-t", f"{run_time_s}s", "--stop-timeout", "30", "--only-summary", "--ai-no-summary",
        ]  # fmt: skip
        env = {**os.environ, "BENCH_ARRIVALS": str(arrivals)}
        started = time.monotonic()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        elapsed = time.monotonic() - started
        mock_cpu = cpu_seconds(mock_pid) - mock_cpu_start
    return summarise(users, truth, arrivals, elapsed, mock_cpu)


def summarise(users: int, truth: Path, arrivals: Path, elapsed_s: float, mock_cpu_s: float) -> Figures:
    written = {r["request_id"]: r for r in read_jsonl(truth)}
    client = read_jsonl(arrivals)
    errors = [
        (float(c["first_token_s"]) - float(written[c["request_id"]]["first_token_s"])) * 1000.0  # type: ignore[arg-type]
        for c in client
        if c["first_token_s"] is not None and c["request_id"] in written
    ]
    chunks = sum(int(c["chunks"]) for c in client)  # type: ignore[call-overload]
    span_s = max(float(c["end_s"]) for c in client) - min(float(c["start_s"]) for c in client)  # type: ignore[arg-type]
    cpu_s = float(arrivals.with_suffix(".cpu").read_text())
    return Figures(
        users=users,
        requests=len(client),
        chunks_per_s=chunks / span_s,
        error_p50_ms=percentile(errors, 0.5),
        error_p99_ms=percentile(errors, 0.99),
        error_max_ms=max(errors),
        locust_cpu_pct=100.0 * cpu_s / span_s,
        mock_cpu_pct=100.0 * mock_cpu_s / elapsed_s,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--run-time", type=int, default=20, help="seconds per level (default 20)")
    parser.add_argument("--itl-ms", default="50")
    args = parser.parse_args()
    mock_args = ["--ttft-ms", "200", "--itl-ms", args.itl_ms, "--output-tokens", "40"]
    print(f"mock: {' '.join(mock_args)}; Locust on core 0, mock on core 1; {args.run_time}s per level")
    titles = ("users", "requests", "chunks/s", "err p50", "err p99", "err max", "locust CPU", "mock CPU")
    widths = (6, 9, 9, 9, 9, 9, 10, 9)
    print(" ".join(title.rjust(width) for title, width in zip(titles, widths, strict=True)))
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for users in args.users:
            f = run_level(users, args.run_time, mock_args, Path(tmp))
            print(
                f"{f.users:>6} {f.requests:>9} {f.chunks_per_s:>9.0f} {f.error_p50_ms:>7.2f}ms"
                f" {f.error_p99_ms:>7.2f}ms {f.error_max_ms:>7.2f}ms"
                f" {f.locust_cpu_pct:>9.0f}% {f.mock_cpu_pct:>8.0f}%",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
