"""Can one mock process serve 10,000 concurrent streams, and how punctual are its chunks at 20k/s?

The mock (pinned to core 1, with ``--record``) streams to a raw gevent load generator (this process,
pinned to core 0; not Locust, so that the client costs as little as possible): ``--streams``
keep-alive connections each ask for one streamed answer after another for ``--run-time`` seconds.
At the defaults (ITL 500 ms, 10,000 streams) that is 20,000 content chunks per second.

Two views of the ITL jitter:
- the mock's own writes, from its record: how late each chunk's ``sendall`` returned after it was
  due, and each gap between two writes minus the configured ITL (the mock's ground truth);
- the client's arrivals: each gap between two chunks of one answer minus the ITL (includes the
  load generator's own scheduling delay, on a core that also runs 10,000 greenlets).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/mock_scale.py [--streams 10000] [--run-time 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from array import array
from pathlib import Path

import gevent
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust_aiapi.mock import MockProcess
from locust_aiapi.mock._limits import tune_garbage_collector
from tests.stream_swarm import SwarmPlan, SwarmResult, run_swarm

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: array[float] | list[float], fraction: float) -> float:
    """Nearest rank on the sorted values; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def mock_writes(record_path: Path, from_s: float) -> tuple[array[float], array[float], int]:
    """From the record, for answers received after ``from_s`` (the end of the ramp): lateness of each
    write (ms), each gap between two writes minus the ITL (ms), and how many answers that is."""
    late_ms, gap_ms = array("d"), array("d")
    requests = 0
    for line in record_path.read_bytes().splitlines():
        entry = orjson.loads(line)
        if entry["received_s"] < from_s:
            continue
        late_us = entry.get("chunk_late_us") or []
        requests += 1
        late_ms.extend(value / 1000 for value in late_us)
        gap_ms.extend((late_us[k] - late_us[k - 1]) / 1000 for k in range(1, len(late_us)))
    return late_ms, gap_ms, requests


def proc_figures(pid: int) -> tuple[float, float, float]:
    """Peak RSS (MiB), CPU seconds so far, and seconds spent runnable but waiting for a CPU (other
    processes on its core: on a shared machine this, not the mock, can make chunks late)."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    waited_ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
    return hwm_kib / 1024, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, waited_ns / 1e9


def chunks_per_s(result: SwarmResult, from_s: float, to_s: float) -> float:
    return sum(1 for t in result.arrival_s if from_s <= t < to_s) / max(1e-9, to_s - from_s)


def report(
    args: argparse.Namespace,
    result: SwarmResult,
    record: Path,
    rss_mib: float,
    samples: list[tuple[float, ...]],
) -> None:
    late_ms, write_gap_ms, recorded = mock_writes(record, result.started_s + args.ramp)
    rate = chunks_per_s(result, result.started_s + args.ramp, result.started_s + args.ramp + args.run_time)
    abs_client = [abs(value) for value in result.gap_minus_itl_ms]
    abs_writes = [abs(value) for value in write_gap_ms]
    print(
        f"streams {args.streams}  peak connected {result.peak_connected}  "
        f"peak streaming {result.peak_streaming}  ITL {args.itl_ms:g} ms"
    )
    print(
        f"answers {result.responses} ({recorded} after the ramp)  content chunks {result.content_chunks}  "
        f"steady {rate:,.0f} chunks/s"
    )
    print(
        f"mock writes after the ramp: late vs due p50 {percentile(late_ms, 0.5):.2f} ms  p99 "
        f"{percentile(late_ms, 0.99):.2f} ms  max {max(late_ms, default=float('nan')):.2f} ms"
    )
    print(
        f"mock writes after the ramp: |gap - ITL| p50 {percentile(abs_writes, 0.5):.2f} ms  "
        f"p99 {percentile(abs_writes, 0.99):.2f} ms"
    )
    print(
        f"client arrivals: |gap - ITL| p50 {percentile(abs_client, 0.5):.2f} ms  "
        f"p99 {percentile(abs_client, 0.99):.2f} ms"
    )
    cpu_s, waited_s = (
        (samples[1][1] - samples[0][1], samples[1][2] - samples[0][2]) if len(samples) == 2 else (0, 0)
    )
    print(
        f"mock peak RSS {rss_mib:.0f} MiB  after the ramp: mock CPU {100 * cpu_s / args.run_time:.0f} % "
        f"of a core, waited {100 * waited_s / args.run_time:.0f} % of the time for a CPU other processes held"
    )
    print(f"errors {dict(result.errors) or 0}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--run-time", type=float, default=30.0, help="seconds of steady load after the ramp")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which connections open")
    parser.add_argument("--itl-ms", type=float, default=500.0)
    parser.add_argument("--ttft-ms", type=float, default=200.0)
    parser.add_argument("--output-tokens", type=int, default=20)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.streams + 100:
        print(f"open files hard limit {hard} is below {args.streams} streams", file=sys.stderr)
        return 1
    os.sched_setaffinity(0, {0})
    tune_garbage_collector()  # the load generator holds 10,000 streams too
    timing = ["--ttft-ms", str(args.ttft_ms), "--itl-ms", str(args.itl_ms), "--output-tokens", "100000"]
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "record.jsonl"
        with MockProcess([*timing, "--record", str(record)], cpu=1) as mock:
            plan = SwarmPlan(
                mock.url, args.streams, args.run_time, args.ramp, args.itl_ms, args.output_tokens
            )
            samples: list[tuple[float, ...]] = []
            for at_s in (args.ramp, args.ramp + args.run_time):  # the mock's CPU time after the ramp
                gevent.spawn_later(at_s, lambda: samples.append(proc_figures(mock.pid)))
            result = run_swarm(plan)
            rss_mib = proc_figures(mock.pid)[0]
        report(args, result, record, rss_mib, samples)
    return 0 if not result.errors else 1


if __name__ == "__main__":
    sys.exit(main())
