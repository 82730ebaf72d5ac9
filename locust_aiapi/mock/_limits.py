"""Process settings that bound how many streams one mock process can hold, and how punctually.

Each connection is one file descriptor, and many systems start processes with a soft limit of 1,024
open files: without raising it the mock stops accepting at about a thousand concurrent streams.
"""

from __future__ import annotations

import gc
import resource

from .._fd_limit import raise_open_files_limit

__all__ = [
    "GC_THRESHOLDS",
    "WANTED_OPEN_FILES",
    "open_files_warning",
    "raise_open_files_limit",
    "tune_garbage_collector",
]

# Measured with benchmarks/mock_scale.py (10,000 streams, 20k chunks/s, one core): with CPython's
# default thresholds (700, 10, 10) six full collections in 25 s paused the loop up to 470 ms each and
# chunk lateness was p50 90-130 ms; with these, one full collection (15 ms, during the ramp) and
# lateness p50 0.6 ms / p99 19 ms on a quiet machine. Full collections still run, now and then, so
# cyclic garbage stays bounded.
GC_THRESHOLDS = (20_000, 50, 50)

# The article's midnight peak is 8,000 concurrent requests; 10,000 streams plus room for the
# listening socket, the record file and the interpreter's own descriptors.
WANTED_OPEN_FILES = 10_240


def open_files_warning(limit: int) -> str | None:
    """A one-line warning when ``limit`` open files cannot hold the concurrency the mock is built for."""
    if limit == resource.RLIM_INFINITY or limit >= WANTED_OPEN_FILES:
        return None
    return (
        f"warning: the open files limit is {limit} (RLIMIT_NOFILE, hard limit included), so at most about "
        f"{max(0, limit - 20)} concurrent connections; raise it (ulimit -Hn, or LimitNOFILE= in systemd) "
        f"for {WANTED_OPEN_FILES - 240:,} streams"
    )


def tune_garbage_collector() -> None:
    """Keep the objects of start-up out of every collection, and collect the young generations less
    often: each full collection walks every live stream's objects, pausing every stream at once."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
