"""Is the load generator the bottleneck? Client lag measured, and the verdict ``client_bound``.

Client lag is how long bytes that had arrived waited for our greenlet to read them: per read, the
user-space stamp minus the kernel's receive stamp (see :mod:`~locust_aiapi._rx_stamps`). It is what a
saturated load generator adds to every latency it reports. Where no read carries a kernel stamp (no
``SO_TIMESTAMPNS``, TLS), :class:`LoopLagProbe` measures the same thing another way: how late the event
loop runs a timer that was due (a 100 ms timer, so it costs nothing).

The run is ``client_bound`` when the client lag p99 exceeds ``--ai-max-client-lag-ms`` (default
:data:`DEFAULT_MAX_CLIENT_LAG_MS`): then the latencies include our own delay, and the advice is to add
workers. Locust's CPU warning stays; this one is based on what was measured.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final, Literal

import gevent

from ._histogram import LogHistogram
from ._name_stats import NameStats, describe
from ._report_types import ClientLagReport

__all__ = ["DEFAULT_MAX_CLIENT_LAG_MS", "LoopLagProbe", "client_lag_report"]

DEFAULT_MAX_CLIENT_LAG_MS: Final = 5.0
"""Client lag p99 above which a run is client-bound: our TTFT error p99 at 100 idle-ish users is 4-6 ms."""

PROBE_INTERVAL_S: Final = 0.1


class LoopLagProbe:
    """A repeating timer; each run records how late it ran after it was due (ms), in ``lag_ms``."""

    __slots__ = ("_due_s", "_interval_s", "_timer", "lag_ms")

    def __init__(self, interval_s: float = PROBE_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._timer: Any = None
        self._due_s = 0.0
        self.lag_ms = LogHistogram()

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        if self._timer is None:
            self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None

    def _arm(self) -> None:
        loop = gevent.get_hub().loop
        loop.update_now()  # libev counts from its cached time, which may be older than our due time
        self._due_s = time.perf_counter() + self._interval_s
        self._timer = loop.timer(self._interval_s)
        self._timer.start(self._fired)

    def _fired(self) -> None:
        self.lag_ms.add(max(0.0, time.perf_counter() - self._due_s) * 1000.0)
        self._timer.close()
        self._arm()

    def reset(self) -> None:
        self.lag_ms = LogHistogram()

    def take_report(self) -> dict[str, Any] | None:
        """What a worker ships to the master: the overshoots since the last report (None: none)."""
        if not self.lag_ms.count:
            return None
        data = self.lag_ms.to_dict()
        self.reset()
        return data

    def absorb(self, lag_ms: LogHistogram) -> None:
        """A worker's overshoots (see :meth:`take_report`), parsed with ``LogHistogram.from_dict``."""
        self.lag_ms.merge(lag_ms)


def client_lag_report(
    total: NameStats,
    loop_lag_ms: LogHistogram,
    max_client_lag_ms: float = DEFAULT_MAX_CLIENT_LAG_MS,
    by_worker: Mapping[str, LogHistogram] | None = None,
) -> ClientLagReport:
    """The run's client lag (kernel stamps when any read had one, else the loop probe) and verdict."""
    kernel = total.client_lag_ms
    measured = kernel if kernel.count else loop_lag_ms
    source: Literal["kernel", "loop_probe"] | None = None
    if measured.count:
        source = "kernel" if kernel.count else "loop_probe"
    p50, p99 = measured.quantiles((0.5, 0.99)) if measured.count else (None, None)
    bound = p99 is not None and p99 > max_client_lag_ms
    advice = None
    if bound:
        advice = (
            f"client lag p99 {p99:.1f} ms > {max_client_lag_ms:g} ms: the load generator read late, so its "
            "latencies include its own delay; add workers (--processes) or run fewer users per worker"
        )
    return {
        "source": source,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": measured.max if measured.count else None,
        "client_lag_ms": describe(kernel),
        "loop_lag_ms": describe(loop_lag_ms),
        "max_client_lag_ms": max_client_lag_ms,
        "client_bound": bound,
        "advice": advice,
        "by_worker": {worker: describe(lag) for worker, lag in sorted((by_worker or {}).items())},
    }
