"""How many streams can ONE Locust process hold open at once, and what does each cost in memory?

The mock (pinned to core 1) answers every request with one long stream (TTFT, then ``--output-tokens``
chunks ``--itl-ms`` apart: 25 x 1 s by default). One headless Locust process (pinned to core 0) spawns
``--users`` users of ``benchmarks/locustfile_scale.py``; each opens one stream and then idles, so once
spawning is done every user holds its stream open at the same moment. Meanwhile this script samples
the mock's ``/mock/stats`` (``in_flight``: requests the server is answering right now, a true concurrent
count) and the Locust process's ``VmRSS``/``VmHWM`` every ``POLL_S``.

Printed: the most streams open at once, Locust's RSS at 0 users (at test start, after import and
start-up), its RSS with the most streams open and its peak, (RSS at most streams - start) / users in KiB
per streaming user, content chunks/s, failures by kind and Locust's CPU % of one core.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/worker_scale.py [--users 10000] [--user-class BareStreamUser]
"""

from __future__ import annotations

import argparse
import http.client
import os
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream_fidelity import Tls  # noqa: E402 - this folder is on the path of a script run from it

from locust_aiapi._fd_limit import open_files_needed, raise_open_files_limit  # noqa: E402
from locust_aiapi.mock import MockProcess  # noqa: E402

POLL_S = 0.25
LOCUSTFILE = ROOT / "benchmarks" / "locustfile_scale.py"


@dataclass
class Samples:
    peak_in_flight: int = 0
    rss_at_peak_kib: int = 0
    hwm_kib: int = 0
    rss_max_kib: int = 0
    in_flight_at_rss_max: int = 0  # where the peak RSS was reached: ramp, plateau or stop


def proc_kib(pid: int, field: str) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith(field)), None)


def mock_in_flight(url: str) -> int:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    connection = (
        http.client.HTTPSConnection(host, parts.port, timeout=5, context=ssl.create_default_context())
        if parts.scheme == "https"
        else http.client.HTTPConnection(host, parts.port, timeout=5)
    )
    try:
        connection.request("GET", "/mock/stats")
        return int(orjson.loads(connection.getresponse().read())["in_flight"]) - 1  # minus this request
    finally:
        connection.close()


def watch(process: subprocess.Popen[bytes], url: str, deadline_s: float) -> Samples:
    """Until Locust exits: the most streams the mock had open, and Locust's RSS then (the last such)."""
    samples = Samples()
    while process.poll() is None and time.monotonic() < deadline_s:
        in_flight = mock_in_flight(url)
        rss, hwm = proc_kib(process.pid, "VmRSS:"), proc_kib(process.pid, "VmHWM:")
        if rss is not None and in_flight >= samples.peak_in_flight:
            samples.peak_in_flight, samples.rss_at_peak_kib = in_flight, rss
        samples.hwm_kib = max(samples.hwm_kib, hwm or 0)
        if rss is not None and rss > samples.rss_max_kib:
            samples.rss_max_kib, samples.in_flight_at_rss_max = rss, in_flight
        time.sleep(POLL_S)
    return samples


def locust_command(args: argparse.Namespace, url: str, run_time_s: int) -> list[str]:
    return [
        *(["taskset", "-c", "0"] if hasattr(os, "sched_setaffinity") else []),
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), args.user_class,
        "--headless", "--only-summary", "--loglevel", "WARNING", "--host", url,
        "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{run_time_s}s", "--stop-timeout", "0",
        "--ai-no-metrics",  # its port may be taken by another run on this machine
    ]  # fmt: skip


def report(args: argparse.Namespace, samples: Samples, result: dict[str, object], returncode: int) -> None:
    start_kib = int(result["rss_start_kib"] or 0)  # type: ignore[call-overload]
    per_user_kib = (samples.rss_at_peak_kib - start_kib) / max(1, args.users)
    per_user_peak_kib = (samples.hwm_kib - start_kib) / max(1, args.users)
    span_s = float(result["chunk_span_s"])  # type: ignore[arg-type]
    cpu_s, wall_s = float(result["cpu_s"]), float(result["wall_s"])  # type: ignore[arg-type]
    spawn_s = float(result["spawn_s"] or "nan")  # type: ignore[arg-type]
    print(
        f"{args.user_class}: users {args.users:,} (all spawned in {spawn_s:.1f} s)  "
        f"most streams open at once {samples.peak_in_flight:,}"
    )
    print(
        f"Locust RSS at 0 users {start_kib / 1024:.1f} MiB  with {samples.peak_in_flight:,} streams open "
        f"{samples.rss_at_peak_kib / 1024:.1f} MiB  peak {samples.hwm_kib / 1024:.1f} MiB"
    )
    print(
        f"per streaming user {per_user_kib:.1f} KiB (peak RSS: {per_user_peak_kib:.1f} KiB; largest RSS "
        f"sampled {samples.rss_max_kib / 1024:.1f} MiB, with {samples.in_flight_at_rss_max:,} streams open)"
    )
    print(
        f"streams ok {result['ok']:,}  content chunks {result['chunks']:,} "
        f"({int(result['chunks']) / max(span_s, 1e-9):,.0f}/s)  "  # type: ignore[call-overload]
        f"failures {result['errors'] or 0}  Locust CPU {100 * cpu_s / max(wall_s, 1e-9):.0f} % of a core"
        f"  exit code {returncode}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--spawn-rate", type=float, default=1_000.0)
    parser.add_argument("--itl-ms", type=float, default=1_000.0)
    parser.add_argument("--output-tokens", type=int, default=25)
    parser.add_argument("--user-class", default="ScaleUser", choices=["ScaleUser", "BareStreamUser"])
    parser.add_argument("--tls", action="store_true", help="over verified HTTPS (a throwaway certificate)")
    args = parser.parse_args()
    if raise_open_files_limit() < open_files_needed(args.users):
        print(f"the open files hard limit is too low for {args.users} streams", file=sys.stderr)
        return 1
    ramp_s = args.users / args.spawn_rate
    stream_s = 0.2 + args.output_tokens * args.itl_ms / 1000
    run_time_s = int(1.5 * ramp_s + stream_s + 10)  # every stream ends before the stop, on a busy machine too
    timing = ["--ttft-ms", "200", "--itl-ms", str(args.itl_ms), "--output-tokens", str(args.output_tokens)]
    with tempfile.TemporaryDirectory() as folder:
        tls = Tls.make(Path(folder)) if args.tls else None
        with MockProcess([*timing, *(tls.mock_args() if tls else [])], cpu=1) as mock:
            os.environ.update(tls.locust_env() if tls else {})  # Locust and our /mock/stats reads trust it
            return measure(args, mock.url, run_time_s, Path(folder), {**os.environ, "PYTHONPATH": str(ROOT)})


def measure(args: argparse.Namespace, url: str, run_time_s: int, folder: Path, env: dict[str, str]) -> int:
    """One Locust run against the mock at ``url``; prints the figures (1: none to print)."""
    out, log_path = folder / "result.json", folder / "locust.log"
    command = locust_command(args, url, run_time_s)
    with (
        log_path.open("wb") as log,
        subprocess.Popen(
            command, env={**env, "BENCH_SCALE_OUT": str(out)}, stdout=log, stderr=subprocess.STDOUT
        ) as process,
    ):
        samples = watch(process, url, time.monotonic() + run_time_s + 60)
        if process.poll() is None:
            process.kill()
        returncode = process.wait()
    text = log_path.read_text(errors="replace")
    print("".join(line + "\n" for line in text.splitlines() if "warning" in line.lower()), end="")
    if not out.exists():
        print(f"Locust wrote no result; its output ends:\n{text[-3000:]}", file=sys.stderr)
        return 1
    report(args, samples, orjson.loads(out.read_bytes()), returncode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
