"""What distributed aggregation costs: per report (in process), and the master's CPU at 2 workers.

1. In process: a worker's 3 s of records at a given request rate -> take_report -> msgpack
   (as Locust's RPC sends it) -> absorb on the master. Prints µs per report, payload bytes, and
   the share of one core that is at one report every 3 s.
2. A real run: the mock and the master on core 1, two workers on core 0, streaming users for
   --run-time seconds; prints the master's and the workers' CPU from /proc.

    .venv/bin/python benchmarks/distributed_cost.py [--rate 500] [--users 200] [--run-time 20]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from locust.rpc.protocol import Message

from locust_aiapi import RequestKind, RequestRecord, TokenSource
from locust_aiapi._distributed import PAYLOAD_KEY, absorb_report, take_report
from locust_aiapi._run_state import RunState
from locust_aiapi._workers import WorkerLedger
from locust_aiapi.mock import MockProcess

HERE = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REPORT_INTERVAL_S = 3.0


def record(rng: random.Random, i: int) -> RequestRecord:
    start = 1000.0 + i * 0.002
    tokens = rng.randint(20, 400)
    times = [start + rng.uniform(0.1, 0.8) + k * rng.uniform(0.01, 0.04) for k in range(tokens)]
    times.sort()
    return RequestRecord(
        name=rng.choice(["chat", "summarise", "rag-answer"]),
        kind=RequestKind.CHAT,
        model="gpt-4.1",
        streamed=True,
        start_epoch_s=1.8e9 + i * 0.002,
        start_s=start,
        end_s=times[-1] + 0.003,
        first_token_s=times[0],
        first_content_s=times[0],
        last_token_s=times[-1],
        token_chunk_times_s=times,
        output_tokens=tokens,
        output_tokens_source=TokenSource.USAGE,
        prompt_tokens=rng.randint(10, 2000),
    )


def in_process(rate_per_s: int, reports: int) -> None:
    rng = random.Random(3)
    per_report = int(rate_per_s * REPORT_INTERVAL_S)
    master = RunState(ledger=WorkerLedger())
    spent_s, size = 0.0, 0
    for n in range(reports):
        worker = RunState()
        for i in range(per_report):
            worker.record(record(rng, n * per_report + i))
        began = time.perf_counter()
        payload = take_report(worker)
        wire = Message("stats", {PAYLOAD_KEY: payload}, "w").serialize()  # type: ignore[no-untyped-call]
        absorb_report(master, "w", Message.unserialize(wire).data)  # type: ignore[no-untyped-call]
        spent_s += time.perf_counter() - began
        size += len(wire)
    per_report_us = spent_s / reports * 1e6
    print(f"in process: {per_report} records per report ({rate_per_s}/s for {REPORT_INTERVAL_S:.0f} s)")
    print(
        f"  take + msgpack + absorb: {per_report_us:.0f} µs per report,"
        f" {size / reports / 1024:.1f} KiB on the wire"
    )
    print(f"  = {100 * per_report_us / 1e6 / REPORT_INTERVAL_S:.3f} % of one core at one report per 3 s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def real_run(users: int, run_time_s: int) -> None:
    port = free_port()
    base = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile_stream.py"), "--ai-no-summary"]
    quiet = subprocess.DEVNULL
    with MockProcess(["--ttft-ms", "200", "--itl-ms", "50", "--output-tokens", "40"], cpu=1) as mock:
        master = subprocess.Popen(
            ["taskset", "-c", "1", *base, "--master", "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(port), "--expect-workers", "2", "--headless", "--host", mock.url,
             "-u", str(users), "-r", str(users), "-t", f"{run_time_s}s", "--ai-no-metrics"],
            env={**os.environ, "BENCH_WAIT_MAX_S": "1"}, stdout=quiet, stderr=quiet,
        )  # fmt: skip
        worker_command = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        workers = [
            subprocess.Popen(
                ["taskset", "-c", "0", *worker_command],
                env={**os.environ, "BENCH_WAIT_MAX_S": "1"},
                stdout=quiet,
                stderr=quiet,
            )
            for _ in range(2)
        ]
        time.sleep(4)  # workers connected, users spawned
        before = [cpu_seconds(p.pid) for p in (master, *workers)]
        window_s = run_time_s - 6
        time.sleep(window_s)
        after = [cpu_seconds(p.pid) for p in (master, *workers)]
        master.wait(timeout=120)
        for worker in workers:
            worker.wait(timeout=30)
    shares = [100 * (b - a) / window_s for a, b in zip(before, after, strict=True)]
    print(f"real run: {users} users on 2 workers, {window_s} s steady window")
    print(f"  master CPU {shares[0]:.1f} %, workers {shares[1]:.1f} % and {shares[2]:.1f} %")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=500, help="requests/s per worker for the in-process part")
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--run-time", type=int, default=20)
    args = parser.parse_args()
    in_process(args.rate, args.reports)
    real_run(args.users, args.run_time)
    return 0


if __name__ == "__main__":
    sys.exit(main())
