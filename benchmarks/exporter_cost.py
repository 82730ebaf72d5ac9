"""What does the Prometheus exporter cost the process that serves it?

One local Locust process (pinned to core 0) streams back to back from the mock server (pinned to
core 1), once with ``--ai-no-metrics``, once with the exporter on but never scraped, and once while
this script (also on core 1) scrapes /metrics every second. Requests spread over ``--names`` request
names, so each scrape exports that many series per family. Each round runs the three once and
prints throughput and Locust's CPU time per request, with their ratios to the exporter-off run of
the same round; ``--rounds`` repeats the rounds and ends with the median ratios (on a shared machine
one run can be noisy). CPU per request is the steadier figure when Locust is not saturated.

    .venv/bin/python benchmarks/exporter_cost.py [--users 200] [--run-time 20] [--names 100] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from locust_aiapi.mock import MockProcess

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile_names.py"
MOCK_ARGS = ["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "32"]
MODES = ("off", "on, not scraped", "scraped every 1 s")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEADER = (
    f"{'round':>5} {'exporter':>18} {'req/s':>7} {'ratio':>6} {'CPU ms/req':>10} {'ratio':>6} "
    f"{'Locust CPU':>10} {'mock CPU':>8} {'scrapes':>7} {'mean scrape':>11} {'KiB/scrape':>10}"
)


@dataclass
class Scrapes:
    count: int = 0
    seconds: list[float] = field(default_factory=list)
    bytes: int = 0


@dataclass
class Figures:
    mode: str
    requests_per_s: float
    locust_cpu_ms_per_request: float
    locust_cpu_pct: float
    mock_cpu_pct: float
    scrapes: Scrapes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def scrape_until(stop: threading.Event, url: str, interval_s: float, scrapes: Scrapes) -> None:
    while not stop.wait(interval_s):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                scrapes.bytes += len(response.read())
        except OSError:
            continue  # not up yet, or already gone
        scrapes.seconds.append(time.perf_counter() - started)
        scrapes.count += 1


def locust_command(mode: str, url: str, args: argparse.Namespace, port: int, summary: Path) -> list[str]:
    command = [
        "taskset", "-c", "0", sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", url, "-u", str(args.users), "-r", str(args.users), "-t", f"{args.run_time}s",
        "--stop-timeout", "5", "--only-summary", "--ai-no-summary", "--ai-summary-json", str(summary),
    ]  # fmt: skip
    return command + (["--ai-no-metrics"] if mode == "off" else ["--ai-metrics-port", str(port)])


def run_locust(mode: str, args: argparse.Namespace, url: str, summary: Path) -> tuple[float, float, Scrapes]:
    """Run Locust once: its CPU seconds, the wall-clock seconds, and what the scraper saw."""
    port, scrapes, stop = free_port(), Scrapes(), threading.Event()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    scraper = threading.Thread(target=scrape_until, args=(stop, metrics_url, args.scrape_interval, scrapes))
    env = {**os.environ, "BENCH_NAMES": str(args.names)}
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    if mode == MODES[2]:
        scraper.start()
    command = locust_command(mode, url, args, port, summary)
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after, elapsed_s = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - started
    stop.set()
    if scraper.is_alive():
        scraper.join()
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu_s, elapsed_s, scrapes


def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> Figures:
    summary_path = workdir / f"summary-{MODES.index(mode)}.json"
    with MockProcess(MOCK_ARGS, cpu=1) as mock:
        mock_cpu_before = cpu_seconds(mock.pid)
        cpu_s, elapsed_s, scrapes = run_locust(mode, args, mock.url, summary_path)
        mock_cpu_s = cpu_seconds(mock.pid) - mock_cpu_before
    total = json.loads(summary_path.read_text())["total"]
    window_s = total["last_end_epoch_s"] - total["first_start_epoch_s"]
    completed = total["successes"] + total["failures"]
    return Figures(
        mode=mode,
        requests_per_s=completed / window_s,
        locust_cpu_ms_per_request=1000.0 * cpu_s / completed,  # start-up included, alike in every mode
        locust_cpu_pct=100.0 * cpu_s / elapsed_s,
        mock_cpu_pct=100.0 * mock_cpu_s / elapsed_s,
        scrapes=scrapes,
    )


def print_round(round_number: int, rows: list[Figures]) -> list[tuple[float, float]]:
    """One line per configuration; returns the (throughput, CPU per request) ratios to exporter off."""
    base = rows[0]
    ratios = []
    for row in rows:
        s = row.scrapes
        mean_ms = f"{1000 * sum(s.seconds) / s.count:.1f} ms" if s.count else "-"
        size = f"{s.bytes / s.count / 1024:.0f}" if s.count else "-"
        ratio = row.requests_per_s / base.requests_per_s
        cpu_ratio = row.locust_cpu_ms_per_request / base.locust_cpu_ms_per_request
        ratios.append((ratio, cpu_ratio))
        print(
            f"{round_number:>5} {row.mode:>18} {row.requests_per_s:>7.0f} {ratio:>6.3f} "
            f"{row.locust_cpu_ms_per_request:>10.3f} {cpu_ratio:>6.3f} {row.locust_cpu_pct:>9.0f}% "
            f"{row.mock_cpu_pct:>7.0f}% {s.count:>7} {mean_ms:>11} {size:>10}",
            flush=True,
        )
    return ratios


def print_medians(ratios: list[list[tuple[float, float]]]) -> None:
    for mode, column in zip(MODES, zip(*ratios, strict=True), strict=True):
        throughput = statistics.median(r[0] for r in column)
        cpu = statistics.median(r[1] for r in column)
        print(f"median of {len(ratios)} rounds, {mode}: throughput x{throughput:.3f}, CPU/request x{cpu:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--run-time", type=int, default=20, help="seconds per configuration (default 20)")
    parser.add_argument("--names", type=int, default=100, help="distinct request names (default 100)")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of the three runs (default 1)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})  # the scraper shares the mock's core, never Locust's
    print(f"mock: {' '.join(MOCK_ARGS)} on core 1; one Locust process on core 0; {args.users} users, "
          f"{args.names} request names, {args.run_time} s per run")  # fmt: skip
    print(HEADER)
    ratios = []
    with tempfile.TemporaryDirectory(prefix="bench-exporter-") as tmp:
        for round_number in range(1, args.rounds + 1):
            ratios.append(print_round(round_number, [run_mode(mode, args, Path(tmp)) for mode in MODES]))
    if args.rounds > 1:
        print_medians(ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
