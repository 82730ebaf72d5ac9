"""Peak resident memory (MiB) of a child process, from ``VmHWM`` in ``/proc/<pid>/status``.

Why not ``getrusage(RUSAGE_CHILDREN)`` (or ``os.wait4``)? On Linux a child's ``ru_maxrss`` starts at the
parent's RSS: ``fork``/``vfork`` share or copy the parent's pages and ``exec`` folds the old memory's
high-water mark into the child's ``maxrss``. Measured here, parent holding 200 MiB, child ``python -c pass``:
``os.wait4`` says 211 MiB, ``VmHWM`` 10.7 MiB. And ``RUSAGE_CHILDREN`` is a maximum over every child ever
waited for, so no delta isolates one run. ``VmHWM`` belongs to the program's own memory after ``exec`` and
is monotonic, so reading it often and keeping the last value gives the peak; only growth in the final
``poll_s`` before exit can be missed (the file vanishes when the process exits). The memory bugs this
guards against grow over seconds, not 20 ms.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_KIB_PER_MIB = 1024


def vm_hwm_mib(pid: int) -> float | None:
    """The process's peak RSS so far in MiB, or None once it has exited (or is a zombie)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / _KIB_PER_MIB  # the kernel writes "VmHWM:  1234 kB"
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None  # a zombie's status has no Vm* lines


@dataclass(frozen=True)
class MeasuredRun:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mib: float  # 0.0 when the process exited before the first reading


def run_measuring_rss(
    command: Sequence[str], timeout_s: float = 120.0, poll_s: float = 0.02, **popen_kwargs: Any
) -> MeasuredRun:
    """Run ``command`` to completion (text mode, output captured) and report its peak RSS."""
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen_kwargs
    )
    peak_mib = 0.0
    deadline = time.monotonic() + timeout_s
    with process:
        reader = _Drain(process)
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                reader.finish()
                raise subprocess.TimeoutExpired(list(command), timeout_s)
            peak_mib = max(peak_mib, vm_hwm_mib(process.pid) or 0.0)
            time.sleep(poll_s)
        stdout, stderr = reader.finish()
    return MeasuredRun(process.returncode, stdout, stderr, peak_mib)


class _Drain:
    """Reads a child's stdout and stderr in threads, so a chatty child never blocks on a full pipe."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._parts: dict[str, list[str]] = {"out": [], "err": []}
        self._threads = [
            threading.Thread(target=self._read, args=(stream, self._parts[name]), daemon=True)
            for name, stream in (("out", process.stdout), ("err", process.stderr))
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        into.append(stream.read())

    def finish(self) -> tuple[str, str]:
        for thread in self._threads:
            thread.join(10)
        return "".join(self._parts["out"]), "".join(self._parts["err"])
