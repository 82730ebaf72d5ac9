"""How exactly does one Locust process measure TTFT while streaming at 100 / 500 / 1,000 users?

The mock server (pinned to one core) records when it wrote each first token; one Locust
process (pinned to the other core) records when that token arrived. Both stamps come from
CLOCK_MONOTONIC, so their difference is the measurement error of TTFT.

    .venv/bin/python benchmarks/stream_fidelity.py [--users 100 500 1000] [--run-time 20] [--tls]
        [--stamps kernel|user|both]

``--stamps`` (default both): each level with chunk times from the kernel's receive stamps (on Linux,
plain TCP and TLS alike: see ``_tls_stream``) and/or with user-space stamps only (over TLS that is
gevent's ``SSLSocket``, what HTTPS used before).
"lag p99" is the client lag of every kernel-stamped read in the steady state (user-space stamp -
kernel stamp), "-" when no read had a kernel stamp.

To compare with older code, run this script from a checkout of that code: ``python -m locust`` puts
the working directory first on ``sys.path``, ahead of ``PYTHONPATH``.

With ``--tls`` each level runs twice, plain HTTP then HTTPS: the mock serves a throwaway
self-signed certificate (made with ``openssl``) and Locust verifies it (``SSL_CERT_FILE`` points
the default store at it), so the HTTPS rows include the TLS handshakes of the spawn burst.
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


@dataclass(frozen=True)
class Tls:
    """A throwaway self-signed certificate for 127.0.0.1: the mock serves it, Locust trusts it."""

    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> Tls:
        cert, key = folder / "bench-cert.pem", folder / "bench-key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return cls(cert, key)

    def mock_args(self) -> list[str]:
        return ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]

    def locust_env(self) -> dict[str, str]:
        # verification stays on: the default (system) store is read from SSL_CERT_FILE
        return {"SSL_CERT_FILE": str(self.cert)}


@dataclass
class Figures:
    scheme: str
    stamps: str
    users: int
    requests: int
    chunks_per_s: float
    steady_p50_ms: float
    steady_p99_ms: float
    all_p99_ms: float
    all_max_ms: float
    send_p99_ms: float
    lag_p99_ms: float | None
    locust_cpu_pct: float
    mock_cpu_pct: float


@dataclass
class Arrival:
    """One successful request as the client saw it, with the mock's first-token write time."""

    start_s: float
    end_s: float
    chunks: int
    error_ms: float  # client stamp of the first token - mock's sendall of it
    send_ms: float  # mock's receipt of the request - client's start stamp (connect, TLS, queueing)
    lags_ms: list[float]  # client lag of each kernel-stamped read


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def run_level(
    users: int,
    run_time_s: int,
    mock_args: list[str],
    workdir: Path,
    wait_max_s: float,
    tls: Tls | None,
    stamps: str,
) -> Figures:
    scheme = "https" if tls else "http"
    truth = workdir / f"mock-{scheme}-{stamps}-{users}.jsonl"
    arrivals = workdir / f"client-{scheme}-{stamps}-{users}.jsonl"
    tls_args = tls.mock_args() if tls else []
    with MockProcess([*mock_args, *tls_args, "--record", str(truth)], cpu=1) as mock:
        mock_pid = mock.pid
        mock_cpu_start = cpu_seconds(mock_pid)
        command = [
            "taskset", "-c", "0", sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
            "--headless", "--host", mock.url, "-u", str(users), "-r", str(users),
            "-t", f"{run_time_s}s", "--stop-timeout", "30", "--only-summary", "--ai-no-summary",
        ]  # fmt: skip
        env = {**os.environ, "BENCH_ARRIVALS": str(arrivals), "BENCH_WAIT_MAX_S": str(wait_max_s)}
        env.update(tls.locust_env() if tls else {})
        if stamps == "user":
            env["BENCH_USER_STAMPS"] = "1"
        started = time.monotonic()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        elapsed = time.monotonic() - started
        mock_cpu = cpu_seconds(mock_pid) - mock_cpu_start
    return summarise(f"{scheme}/{stamps}", users, run_time_s, truth, arrivals, elapsed, mock_cpu)


def arrivals_with_truth(truth: Path, arrivals: Path) -> list[Arrival]:
    written = {
        str(r["request_id"]): (float(str(r["received_s"])), float(str(r["first_token_s"])))
        for r in read_jsonl(truth)
        if r["first_token_s"]
    }
    rows = []
    for row in read_jsonl(arrivals):
        request_id, first_token_s = str(row["request_id"]), row["first_token_s"]
        if first_token_s is None or request_id not in written:
            continue
        received_s, written_s = written[request_id]
        start_s = float(str(row["start_s"]))
        error_ms = (float(str(first_token_s)) - written_s) * 1000.0
        send_ms = (received_s - start_s) * 1000.0
        lags_ms = [float(lag) for lag in row.get("lags_ms") or []]  # type: ignore[attr-defined]
        end_s, chunks = float(str(row["end_s"])), int(str(row["chunks"]))
        rows.append(Arrival(start_s, end_s, chunks, error_ms, send_ms, lags_ms))
    return rows


def summarise(
    scheme: str, users: int, run_time_s: int, truth: Path, arrivals: Path, elapsed_s: float, mock_cpu_s: float
) -> Figures:
    rows = arrivals_with_truth(truth, arrivals)
    first_s = min(r.start_s for r in rows)
    span_s = max(r.end_s for r in rows) - first_s
    # steady state: all users running (the spawn burst is over) and the stop not yet begun
    steady_rows = [r for r in rows if first_s + 2.0 <= r.start_s <= first_s + run_time_s - 1.0]
    steady = [r.error_ms for r in steady_rows]
    every = [r.error_ms for r in rows]
    cpu_s = float(arrivals.with_suffix(".cpu").read_text())
    lags = [lag for r in steady_rows for lag in r.lags_ms]
    scheme, stamps = scheme.split("/")
    return Figures(
        scheme=scheme,
        stamps=stamps,
        users=users,
        requests=len(rows),
        chunks_per_s=sum(r.chunks for r in rows) / span_s,
        steady_p50_ms=percentile(steady, 0.5),
        steady_p99_ms=percentile(steady, 0.99),
        all_p99_ms=percentile(every, 0.99),
        all_max_ms=max(every),
        send_p99_ms=percentile([r.send_ms for r in rows], 0.99),
        lag_p99_ms=percentile(lags, 0.99) if lags else None,
        locust_cpu_pct=100.0 * cpu_s / span_s,
        mock_cpu_pct=100.0 * mock_cpu_s / elapsed_s,
    )


TITLES = ("scheme", "stamps", "users", "requests", "chunks/s", "steady p50", "steady p99", "all p99",
          "all max", "send p99", "lag p99", "Locust CPU", "mock CPU")  # fmt: skip
WIDTHS = (6, 6, 6, 9, 9, 10, 10, 9, 9, 9, 8, 10, 9)


def row(cells: tuple[object, ...]) -> str:
    return " ".join(str(cell).rjust(width) for cell, width in zip(cells, WIDTHS, strict=True))


def figures_row(f: Figures) -> str:
    return row((
        f.scheme, f.stamps, f.users, f.requests, f"{f.chunks_per_s:.0f}",
        f"{f.steady_p50_ms:.2f}", f"{f.steady_p99_ms:.2f}", f"{f.all_p99_ms:.2f}", f"{f.all_max_ms:.2f}",
        f"{f.send_p99_ms:.1f}", "-" if f.lag_p99_ms is None else f"{f.lag_p99_ms:.2f}",
        f"{f.locust_cpu_pct:.0f}%", f"{f.mock_cpu_pct:.0f}%",
    ))  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--run-time", type=int, default=20, help="seconds per level (default 20)")
    parser.add_argument("--itl-ms", default="50")
    parser.add_argument("--keep", metavar="DIR", help="keep the raw JSONL files in DIR")
    parser.add_argument("--wait-max", type=float, default=1.0, help="think time U(0, s) (default 1)")
    parser.add_argument(
        "--tls", action="store_true", help="each level over plain HTTP, then over verified HTTPS"
    )
    parser.add_argument(
        "--stamps", choices=("kernel", "user", "both"), default="both",
        help="chunk times from kernel receive stamps, user-space stamps, or each level both ways",
    )  # fmt: skip
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    mock_args = [
        "--ttft-ms", "200", "--ttft-jitter-ms", "50",
        "--itl-ms", args.itl_ms, "--itl-jitter-ms", "10",
        "--output-tokens", "40", "--output-tokens-jitter", "10",
    ]  # fmt: skip
    print(f"mock: {' '.join(mock_args)}; Locust on core 0, mock on core 1; {args.run_time}s per level")
    print("TTFT error = client's first-token stamp - mock's first-token sendall (ms)")
    print("send = mock's receipt of the request - client's start stamp (ms): connect, TLS, queueing")
    print(row(TITLES))
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        schemes = [None, Tls.make(workdir)] if args.tls else [None]
        modes = ["kernel", "user"] if args.stamps == "both" else [args.stamps]
        for users in args.users:
            for tls in schemes:
                for stamps in modes:
                    figures = run_level(users, args.run_time, mock_args, workdir, args.wait_max, tls, stamps)
                    print(figures_row(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
