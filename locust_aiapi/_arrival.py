"""The open model: iterations start at a fixed or Poisson rate, whatever the server's latency.

One :class:`ArrivalScheduler` per process (the local runner, or each worker with its share of the
rate) issues *intended start times* on schedule from a greenlet. Users of the pool wait for one
when idle. A start that finds an idle user is handed over at once; otherwise it waits in a backlog
for a user to come free, at most ``max_delay_s``, and is then *dropped* (counted, never run), as
k6 counts dropped iterations. ``max_delay_s = 0`` drops at once, like k6.

Latency is measured from the intended start: the user moves the first request of each iteration
back to it, so time spent waiting for a free user counts, and a slow server cannot hide behind
coordinated omission. How late each iteration actually started is kept as ``start_delay_ms``.

Limits: rate precision is that of gevent's timer (about a millisecond) and of a busy process's
event loop (a CPU-bound worker issues late, and the late starts show up in ``start_delay_ms``);
the pool (``-u``) caps concurrency; a worker's share is the rate divided by the workers at the
start of the test (workers joining later are not given a share).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.event import AsyncResult

from ._histogram import LogHistogram
from ._name_stats import describe
from ._options import AIOptions
from ._report_types import ArrivalReport, ArrivalSettings

__all__ = ["ArrivalConfig", "ArrivalScheduler", "ArrivalStats"]


@dataclass(frozen=True, slots=True)
class ArrivalConfig:
    rate_per_s: float
    poisson: bool = False
    max_delay_s: float = 1.0

    @classmethod
    def from_options(cls, options: AIOptions, fallback_rate: float | None = None) -> ArrivalConfig | None:
        """None when no rate is configured (neither ``--ai-arrival-rate`` nor the class attribute)."""
        rate = options.arrival_rate_per_s or fallback_rate
        if rate is None or not rate > 0.0:
            return None
        delay = options.arrival_max_delay_s
        return cls(float(rate), options.arrival_poisson, 1.0 if delay is None else delay)

    def as_dict(self) -> ArrivalSettings:
        return {"rate_per_s": self.rate_per_s, "poisson": self.poisson, "max_delay_s": self.max_delay_s}


@dataclass
class ArrivalStats:
    """Counters of one process (workers ship deltas). At the end of a test, issued = started + dropped.

    ``started`` counts the starts whose request began (the user confirms it when it reports the
    request, so a user stopped between taking a start and sending is not counted as started).
    """

    issued: int = 0
    started: int = 0
    dropped: int = 0
    start_delay_ms: LogHistogram = field(default_factory=LogHistogram)

    def reset(self) -> None:
        self.issued = self.started = self.dropped = 0
        self.start_delay_ms = LogHistogram()

    def take_report(self) -> dict[str, Any] | None:
        if not (self.issued or self.started or self.dropped or self.start_delay_ms.count):
            return None
        payload = {
            "issued": self.issued,
            "started": self.started,
            "dropped": self.dropped,
            "start_delay_ms": self.start_delay_ms.to_dict(),
        }
        self.reset()
        return payload

    def absorb(self, payload: Mapping[str, Any]) -> None:
        """Add a worker's deltas. Raises ValueError when malformed."""
        try:
            counts = [int(payload[name]) for name in ("issued", "started", "dropped")]
            delays = LogHistogram.from_dict(payload["start_delay_ms"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an arrival report: {exc!r}") from exc
        self.issued += counts[0]
        self.started += counts[1]
        self.dropped += counts[2]
        self.start_delay_ms.merge(delays)

    def merge(self, other: ArrivalStats) -> None:
        self.issued += other.issued
        self.started += other.started
        self.dropped += other.dropped
        self.start_delay_ms.merge(other.start_delay_ms)

    def report(self, config: ArrivalConfig | None) -> ArrivalReport | None:
        if config is None and not self.issued:
            return None
        counts: ArrivalReport = {
            "issued": self.issued,
            "started": self.started,
            "dropped": self.dropped,
            "dropped_rate": self.dropped / self.issued if self.issued else None,
            "start_delay_ms": describe(self.start_delay_ms),
        }
        return counts if config is None else {**config.as_dict(), **counts}


class ArrivalScheduler:
    """Issues intended start times at ``rate × share`` per second to the users of this process."""

    def __init__(
        self,
        config: ArrivalConfig,
        stats: ArrivalStats,
        clock: Callable[[], float] = time.perf_counter,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.stats = stats
        self.share = 1.0
        self._clock = clock
        self._rng = rng or random.Random()
        self._idle: deque[AsyncResult] = deque()
        self._backlog: deque[float] = deque()
        self._handed = 0  # taken by a user whose request has not been reported yet
        self._greenlet: gevent.Greenlet | None = None

    @property
    def rate_per_s(self) -> float:
        return self.config.rate_per_s * self.share

    def next_gap_s(self) -> float:
        rate = self.rate_per_s
        if not rate > 0.0:
            return math.inf
        return self._rng.expovariate(rate) if self.config.poisson else 1.0 / rate

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """End of the test (users are stopped first): no more starts. Those that waited too long
        are dropped; those the end cut short (still queued, or taken by a user stopped before it
        sent its request) are not counted at all, as if never due."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None
        self._expire(self._clock())
        self.stats.issued -= len(self._backlog) + self._handed
        self._backlog.clear()
        self._handed = 0

    def _run(self) -> None:
        due_s = self._clock()
        while True:
            self.issue(due_s)
            gap = self.next_gap_s()
            if math.isinf(gap):
                return
            due_s += gap
            gevent.sleep(max(0.0, due_s - self._clock()))

    def issue(self, intended_s: float) -> None:
        """One start is due at ``intended_s``: to an idle user, the backlog, or dropped."""
        self.stats.issued += 1
        self._expire(self._clock())
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.ready():
                self._handed += 1
                waiter.set(intended_s)
                return
        if self.config.max_delay_s > 0.0:
            self._backlog.append(intended_s)
        else:
            self.stats.dropped += 1

    def _expire(self, now_s: float) -> None:
        limit = self.config.max_delay_s
        while self._backlog and now_s - self._backlog[0] > limit:
            self._backlog.popleft()
            self.stats.dropped += 1

    def take(self) -> float:
        """Block the calling user until a start is due for it; returns the intended start."""
        self._expire(self._clock())
        if self._backlog:
            self._handed += 1
            return self._backlog.popleft()
        waiter = AsyncResult()
        self._idle.append(waiter)
        try:
            return float(waiter.get())
        except BaseException:  # the user was stopped while it waited
            if not waiter.ready():
                self._idle.remove(waiter)
            raise  # (just after it was handed a start: stop() will not count that start)

    def confirm_start(self, delay_s: float) -> None:
        """A user sent the request of a start it took, ``delay_s`` after the intended time."""
        self._handed = max(0, self._handed - 1)
        self.stats.started += 1
        self.stats.start_delay_ms.add(max(0.0, delay_s) * 1000.0)
