"""How long does a full garbage collection stop every stream, with and without ``gc.freeze``?

One Locust process (core 0) streams from the mock (core 1) with N users; 6 s after the spawn completed
it times one ``gc.collect()`` (what CPython's own full collections cost in that state: while one runs,
no stream is read). Default: after our freeze at ``spawning_complete`` (``_gc_pauses``); ``off``: with
``--ai-no-gc-freeze``.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/gc_pauses.py [--users 1000 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from locust_aiapi.mock import MockProcess

HERE = Path(__file__).resolve().parent


def pause(users: int, freeze: bool, workdir: Path) -> dict[str, float]:
    probe = workdir / f"gc-{users}-{freeze}.json"
    mock_args = ["--ttft-ms", "200", "--itl-ms", "50", "--output-tokens", "40"]
    with MockProcess(mock_args, cpu=1) as mock:
        command = [
            "taskset", "-c", "0", sys.executable, "-m", "locust", "-f", str(HERE / "locustfile_stream.py"),
            "--headless", "--host", mock.url, "-u", str(users), "-r", str(users), "-t", "12s",
            "--only-summary", "--ai-no-summary", "--ai-no-metrics",
            *([] if freeze else ["--ai-no-gc-freeze"]),
        ]  # fmt: skip
        env = {
            **os.environ,
            "BENCH_GC_PROBE": str(probe),
            "BENCH_GC_PROBE_AFTER_S": "6",
            "BENCH_WAIT_MAX_S": "1",
        }
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return dict(json.loads(probe.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 3000])
    args = parser.parse_args()
    print(f"{'users':>6} {'freeze':>6} {'full collection':>16} {'tracked objects':>16} {'frozen':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-gc-") as tmp:
        for users in args.users:
            for freeze in (False, True):
                f = pause(users, freeze, Path(tmp))
                print(f"{users:>6} {'on' if freeze else 'off':>6} {f['pause_ms']:>13.1f} ms "
                      f"{int(f['tracked']):>16} {int(f['frozen']):>8}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
