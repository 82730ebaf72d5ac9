"""Counters behind `GET /mock/stats` and the informational `x-ratelimit-*` headers."""

from __future__ import annotations

import time
from collections import Counter

from ._capacity import Capacity
from ._http import Headers

OUTCOMES = ("ok", "rate_limited", "server_error", "stream_error", "truncated", "client_error", "disconnected")


class ServerStats:
    def __init__(self, capacity: Capacity) -> None:
        self._capacity = capacity
        self.by_endpoint: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
        self.in_flight = 0
        self.peak_in_flight = 0  # the most requests open at once: a load generator's true concurrency
        self.tls_handshake_failures = 0

    def begin(self, endpoint: str) -> None:
        self.by_endpoint[endpoint] += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def end(self, outcome: str | None) -> None:
        """`outcome` None: a request that does not count in the outcome buckets."""
        if outcome is not None:
            self.by_outcome[outcome] += 1
        self.in_flight -= 1

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": dict(self.by_endpoint),
            "outcomes": dict(self.by_outcome),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "queued": self._capacity.queued,
            "generating": self._capacity.active,
            "tls_handshake_failures": self.tls_handshake_failures,
        }


class RateLimitWindow:
    """A fixed one-minute window that only reports (never enforces) request budget headers."""

    WINDOW_S = 60.0

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._window_start_s = time.monotonic()
        self._used = 0

    def headers(self, *, exhausted: bool = False) -> Headers:
        now = time.monotonic()
        if now - self._window_start_s >= self.WINDOW_S:
            self._window_start_s, self._used = now, 0
        self._used += 1
        remaining = 0 if exhausted else max(0, self._limit - self._used)
        reset_s = self.WINDOW_S - (now - self._window_start_s)
        return [
            ("x-ratelimit-limit-requests", str(self._limit)),
            ("x-ratelimit-remaining-requests", str(remaining)),
            ("x-ratelimit-reset-requests", format_duration(reset_s)),
        ]


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1.0:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60.0:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}m{round(rest)}s"
