"""Locust's CPU per streamed chunk, this tree against another, measured at the same time on the same core.

On a shared machine the CPU time of one run moves by 10-20 % from run to run (the host, not the code),
which hides any change smaller than that. Here two Locust processes, one per tree, run at once, both
pinned to core 0, each streaming from its own mock (both on core 1) with the same users and timing, so
both see the same machine; their ratio is the figure. CPU per chunk is the Locust process's CPU over
the test (``time.process_time`` at test start and stop) divided by the token chunks it received.

    mkdir /tmp/before && git archive a042110 | tar -x -C /tmp/before
    PYTHONPATH=$PWD .venv/bin/python benchmarks/paired_cost.py --before /tmp/before [--users 500]
        [--tls] [--repeat 2] [--run-time 20] [--output-tokens 40] [--sequential]

``--sequential`` runs the two trees one after the other instead, each alone on core 0, the order
alternating between repeats. Use it when the two processes together need more than the core: then the
slower tree waits longer for the CPU, each of its loop iterations finds more ready reads to share its
fixed cost, and its CPU per chunk drops, which pulls the ratio towards 1 (HTTPS, 400 tokens, against
a042110: 0.88 and 0.89 paired at 500 users; each alone 0.73 and 0.75 at 500, 0.70-0.77 at 300).

``--output-tokens`` is the length of every answer: what is paid once per request (sending it, the
head, the record) is shared by that many chunks (40: short answers; 400: a typical LLM answer, then
use ``--run-time 40`` so that each user ends two 20 s answers).

``--split SHORT,LONG`` separates the two costs: each tree runs alone at both answer lengths (order
alternating between repeats), and CPU = per chunk × chunks + per request × requests is solved from its
two runs. The per-chunk figure is then what one more token of an answer costs, whatever the length;
the per-request one is what an answer costs besides its tokens (sending it, the head, the record,
Locust's task and stats).

Each tree is run with ``python -m locust`` from its own directory (the working directory comes first on
``sys.path``), with this tree's ``benchmarks/locustfile_stream.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from locust_aiapi.mock import MockProcess

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stream_fidelity import Tls  # noqa: E402

MOCK_ARGS = ["--ttft-ms", "200", "--ttft-jitter-ms", "50", "--itl-ms", "50", "--itl-jitter-ms", "10"]


@dataclass(frozen=True)
class Load:
    users: int
    run_time_s: int
    output_tokens: int
    tls: Tls | None


def one_run(tree: Path, load: Load, out: Path) -> tuple[int, float]:
    """(chunks, CPU seconds) of one Locust process of ``tree``."""
    chunks, _requests, cpu_s = counted_run(tree, load, out)
    return chunks, cpu_s


def counted_run(tree: Path, load: Load, out: Path) -> tuple[int, int, float]:
    """(chunks, requests, CPU seconds) of one Locust process of ``tree``."""
    tls, users = load.tls, load.users
    for stale in (out, out.with_suffix(".cpu")):  # an earlier repeat's: a run that failed must not reuse them
        stale.unlink(missing_ok=True)
    mock_args = [*MOCK_ARGS, "--output-tokens", str(load.output_tokens), *(tls.mock_args() if tls else [])]
    with MockProcess(mock_args, cpu=1) as mock:
        command = [
            "taskset", "-c", "0", sys.executable, "-m", "locust", "-f", str(HERE / "locustfile_stream.py"),
            "--headless", "--host", mock.url, "-u", str(users), "-r", str(users), "-t", f"{load.run_time_s}s",
            "--stop-timeout", "30", "--only-summary", "--ai-no-summary", "--ai-no-metrics",
        ]  # fmt: skip
        env = {**os.environ, "BENCH_ARRIVALS": str(out), "BENCH_WAIT_MAX_S": "1", "PYTHONPATH": str(tree)}
        env.update(tls.locust_env() if tls else {})
        subprocess.run(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line]
    return sum(row["chunks"] for row in rows), len(rows), float(out.with_suffix(".cpu").read_text())


@dataclass(frozen=True)
class Split:
    chunk_us: float
    request_us: float


def split(tree: Path, loads: tuple[Load, Load], workdir: Path) -> Split:
    """Per-chunk and per-request CPU of ``tree``, solved from one run at each of two answer lengths."""
    (c1, r1, s1), (c2, r2, s2) = (counted_run(tree, load, workdir / "split.jsonl") for load in loads)
    det = c1 * r2 - c2 * r1
    if det == 0:
        raise SystemExit("paired_cost: the two runs have the same chunks per request; nothing to solve")
    return Split((s1 * r2 - s2 * r1) * 1e6 / det, (c1 * s2 - c2 * s1) * 1e6 / det)


def split_repeat(
    before: Path, loads: tuple[Load, Load], workdir: Path, after_first: bool
) -> dict[str, Split]:
    """Both trees' :class:`Split`, each alone (``after_first``: this tree first)."""
    trees = [("before", before), ("after", HERE.parent)]
    return {label: split(tree, loads, workdir) for label, tree in (trees[::-1] if after_first else trees)}


def split_lengths(text: str) -> tuple[int, int]:
    try:
        short, long = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SHORT,LONG, two token counts") from None
    if not 0 < short < long:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 < SHORT < LONG")
    return short, long


def sequential(before: Path, load: Load, workdir: Path, after_first: bool) -> tuple[float, float]:
    """µs per chunk of ``before`` and of this tree, each run alone (``after_first``: this tree first)."""
    trees = [("before", before), ("after", HERE.parent)]
    results = {label: one_run(tree, load, workdir / f"{label}.jsonl")
               for label, tree in (trees[::-1] if after_first else trees)}  # fmt: skip
    return per_chunk_us(results)


def per_chunk_us(results: dict[str, tuple[int, float]]) -> tuple[float, float]:
    """µs per chunk of ``before`` and ``after`` from their (chunks, CPU seconds)."""
    (chunks_a, cpu_a), (chunks_b, cpu_b) = results["before"], results["after"]
    return cpu_a * 1e6 / chunks_a, cpu_b * 1e6 / chunks_b


def paired(before: Path, load: Load, workdir: Path) -> tuple[float, float]:
    """µs per chunk of ``before`` and of this tree, run at the same time."""
    results: dict[str, tuple[int, float]] = {}

    def run(label: str, tree: Path) -> None:
        results[label] = one_run(tree, load, workdir / f"{label}.jsonl")

    threads = [threading.Thread(target=run, args=(label, tree)) for label, tree in
               (("before", before), ("after", HERE.parent))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_chunk_us(results)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True, help="the other tree (a checkout or archive)")
    parser.add_argument("--users", type=int, default=500, help="streaming users per process (default 500)")
    parser.add_argument("--run-time", type=int, default=20, help="seconds (default 20)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tls", action="store_true", help="over verified HTTPS")
    parser.add_argument("--output-tokens", type=int, default=40, help="tokens per answer (default 40)")
    parser.add_argument(
        "--sequential", action="store_true", help="one tree after the other, each alone on core 0"
    )
    parser.add_argument(
        "--split", type=split_lengths, metavar="SHORT,LONG",
        help="solve per-chunk and per-request CPU from runs at two answer lengths (e.g. 40,400)",
    )  # fmt: skip
    args = parser.parse_args()
    if not (args.before / "locust_aiapi").is_dir():
        parser.error(f"--before {args.before}: no locust_aiapi package there")
    if args.split:
        return main_split(args)
    print(f"{'scheme':>6} {'users':>6} {'tokens':>6} {'before µs/chunk':>16} {'after µs/chunk':>15} "
          f"{'after/before':>13}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-paired-") as tmp:
        tls = Tls.make(Path(tmp)) if args.tls else None
        load = Load(args.users, args.run_time, args.output_tokens, tls)
        for repeat in range(args.repeat):
            if args.sequential:
                before_us, after_us = sequential(args.before.resolve(), load, Path(tmp), repeat % 2 == 1)
            else:
                before_us, after_us = paired(args.before.resolve(), load, Path(tmp))
            scheme = "https" if tls else "http"
            print(f"{scheme:>6} {args.users:>6} {args.output_tokens:>6} {before_us:>16.1f} {after_us:>15.1f} "
                  f"{after_us / before_us:>13.3f}", flush=True)  # fmt: skip
    return 0


def main_split(args: argparse.Namespace) -> int:
    print(f"{'scheme':>6} {'users':>6} {'tokens':>8} {'tree':>6} {'µs/chunk':>9} {'µs/request':>11}")
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        tls = Tls.make(Path(tmp)) if args.tls else None
        loads = tuple(Load(args.users, args.run_time, tokens, tls) for tokens in args.split)
        scheme, tokens = ("https" if tls else "http"), f"{args.split[0]},{args.split[1]}"
        for repeat in range(args.repeat):
            results = split_repeat(args.before.resolve(), loads, Path(tmp), repeat % 2 == 1)  # type: ignore[arg-type]
            for label in ("before", "after"):
                one = results[label]
                print(f"{scheme:>6} {args.users:>6} {tokens:>8} {label:>6} {one.chunk_us:>9.1f} "
                      f"{one.request_us:>11.0f}")  # fmt: skip
            before, after = results["before"], results["after"]
            print(f"{'':>6} {'':>6} {'':>8} {'a/b':>6} {after.chunk_us / before.chunk_us:>9.3f} "
                  f"{after.request_us / before.request_us:>11.3f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
