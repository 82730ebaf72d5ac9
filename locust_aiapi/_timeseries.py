"""Time series for the report: requests, failures by kind, output tokens and TTFT per 2-second bucket.

Requests are bucketed by the wall-clock time they *ended* (``start_epoch_s`` + E2E), on the process
that made them; workers ship the buckets they filled since their last report and the master adds them
bucket by bucket, so the series is exact however late a report arrives. The number of users is
sampled on the local or master process (a greenlet, once a second) into the same buckets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _metrics
from ._histogram import LogHistogram
from ._name_stats import widen_window
from ._records import Outcome, RequestRecord
from ._report_types import TimeSeriesFigures, TimeSeriesPoint, TimeSeriesReport

__all__ = ["INTERVAL_S", "MAX_NAMES", "OTHER_NAMES", "TimeSeries", "WindowFigures"]

INTERVAL_S = 2.0
MAX_POINTS = 240  # longer runs are shown with wider buckets
MAX_NAMES = 10
"""Request names with a line of their own in each bucket; the others share ``OTHER_NAMES``."""
OTHER_NAMES = "(other names)"
MIN_COVERED_S = 0.5  # an edge bucket covering less of the run is shown with its neighbour


_LATENCIES = ("ttft_ms", "e2e_ms", "itl_ms")  # the histograms of a bucket, fed from successful requests


@dataclass(slots=True)
class _Bucket:
    """One interval: its totals, and the same per request name (``by_name``: at most ``MAX_NAMES``)."""

    requests: int = 0
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    output_tokens: int = 0  # of successful requests
    ttft_ms: LogHistogram = field(default_factory=LogHistogram)
    e2e_ms: LogHistogram = field(default_factory=LogHistogram)
    itl_ms: LogHistogram = field(default_factory=LogHistogram)
    users: int | None = None
    by_name: dict[str, _Bucket] = field(default_factory=dict)

    def add(self, record: RequestRecord, metrics: _metrics.RecordMetrics) -> None:
        self.requests += 1
        if record.ok:
            self.output_tokens += record.output_tokens or 0
            for histogram, value in (
                (self.ttft_ms, metrics.ttft_ms),
                (self.e2e_ms, metrics.e2e_ms),
                (self.itl_ms, metrics.itl_ms),
            ):
                if value is not None and value >= 0.0:
                    histogram.add(value)
        else:
            kind = record.failure_kind.value if record.failure_kind is not None else "unknown"
            self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + 1

    def named(self, name: str) -> _Bucket:
        """The bucket of request name ``name``; past ``MAX_NAMES`` names, the one of ``OTHER_NAMES``."""
        bucket = self.by_name.get(name)
        if bucket is None:
            if len(self.by_name) >= MAX_NAMES - (OTHER_NAMES not in self.by_name):
                name = OTHER_NAMES
            bucket = self.by_name.setdefault(name, _Bucket())
        return bucket

    def merge(self, other: _Bucket) -> None:
        self.requests += other.requests
        for kind, n in other.failures_by_kind.items():
            self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + n
        self.output_tokens += other.output_tokens
        for name in _LATENCIES:
            getattr(self, name).merge(getattr(other, name))
        if other.users is not None:
            self.users = other.users if self.users is None else max(self.users, other.users)
        for name, part in other.by_name.items():
            self.named(name).merge(part)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "requests": self.requests,
            "failures_by_kind": dict(self.failures_by_kind),
            "output_tokens": self.output_tokens,
        }
        data.update((name, getattr(self, name).to_dict()) for name in _LATENCIES)
        if self.by_name:
            data["by_name"] = {name: part.to_dict() for name, part in self.by_name.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], nested: bool = False) -> _Bucket:
        try:
            bucket = cls(
                requests=int(data["requests"]),
                failures_by_kind={str(k): int(n) for k, n in data["failures_by_kind"].items()},
                output_tokens=int(data["output_tokens"]),
            )
            for name in _LATENCIES:
                setattr(bucket, name, LogHistogram.from_dict(data[name]))
            names = {} if nested else data.get("by_name", {})  # one level only: a name has no names
            for name, part in names.items():
                bucket.named(str(name)).merge(cls.from_dict(part, nested=True))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a time-series bucket: {exc!r}") from exc
        return bucket


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """The requests that ended in the whole buckets of a recent window (the console's live line)."""

    seconds: float  # 0.0: no whole bucket in the window yet
    requests: int
    output_tokens: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None

    @property
    def requests_per_s(self) -> float | None:
        return self.requests / self.seconds if self.seconds else None

    @property
    def output_tokens_per_s(self) -> float | None:
        return self.output_tokens / self.seconds if self.seconds else None


@dataclass
class TimeSeries:
    """Buckets of ``INTERVAL_S`` seconds keyed by ``floor(epoch / INTERVAL_S)``."""

    buckets: dict[int, _Bucket] = field(default_factory=dict)
    # the span of the requests (first start, last end): edge buckets are only partly covered
    first_epoch_s: float | None = None
    last_epoch_s: float | None = None

    def _extend(self, first_s: float | None, last_s: float | None) -> None:
        window = (self.first_epoch_s, self.last_epoch_s)
        self.first_epoch_s, self.last_epoch_s = widen_window(window, first_s, last_s)

    def _bucket(self, epoch_s: float) -> _Bucket:
        key = math.floor(epoch_s / INTERVAL_S)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket()
        return bucket

    def add(self, record: RequestRecord, metrics: _metrics.RecordMetrics | None = None) -> None:
        if record.outcome is Outcome.CANCELLED:
            return
        if metrics is None:
            metrics = _metrics.RecordMetrics.of(record)
        self._extend(record.start_epoch_s, metrics.end_epoch_s)
        bucket = self._bucket(metrics.end_epoch_s)
        bucket.add(record, metrics)
        bucket.named(record.name).add(record, metrics)

    def sample_users(self, epoch_s: float, users: int) -> None:
        bucket = self._bucket(epoch_s)
        bucket.users = users if bucket.users is None else max(bucket.users, users)

    def take_report(self) -> dict[str, Any] | None:
        """Worker: buckets filled since the last report (None when there are none)."""
        if not self.buckets:
            return None
        payload = {
            "buckets": {str(key): bucket.to_dict() for key, bucket in self.buckets.items()},
            "window": [self.first_epoch_s, self.last_epoch_s],
        }
        self.buckets, self.first_epoch_s, self.last_epoch_s = {}, None, None
        return payload

    def absorb(self, payload: Mapping[str, Any]) -> None:
        """Master: add a worker's buckets. Raises ValueError when malformed."""
        try:
            parts = {int(key): _Bucket.from_dict(data) for key, data in payload["buckets"].items()}
            first, last = (None if v is None else float(v) for v in payload["window"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a time-series report: {exc!r}") from exc
        self._extend(first, last)
        for key, part in parts.items():
            self.buckets.setdefault(key, _Bucket()).merge(part)

    def merge(self, other: TimeSeries) -> None:
        self._extend(other.first_epoch_s, other.last_epoch_s)
        for key, part in other.buckets.items():
            self.buckets.setdefault(key, _Bucket()).merge(part)

    def window(self, start_epoch_s: float, end_epoch_s: float) -> WindowFigures:
        """The buckets lying wholly in [start, end): a bucket still filling is left out, not diluted."""
        first = math.ceil(start_epoch_s / INTERVAL_S)
        last = math.floor(end_epoch_s / INTERVAL_S)  # exclusive: bucket ``last`` ends after ``end``
        merged = _Bucket()
        for key in range(first, last):
            if key in self.buckets:
                merged.merge(self.buckets[key])
        p50, p95 = merged.ttft_ms.quantiles((0.5, 0.95))
        seconds = max(0, last - first) * INTERVAL_S
        return WindowFigures(seconds, merged.requests, merged.output_tokens, p50, p95)

    def points(self, max_points: int = MAX_POINTS) -> TimeSeriesReport:
        """``{"interval_s", "points": [...]}``: every bucket from the first to the last (empty ones too)."""
        if not self.buckets:
            return {"interval_s": INTERVAL_S, "points": []}
        first, last = min(self.buckets), max(self.buckets)
        if self.last_epoch_s is not None:  # users sampled after the last request ended: no rate to show
            last = max(first, min(last, math.floor(self.last_epoch_s / INTERVAL_S)))
        width = max(1, math.ceil((last - first + 1) / max_points))
        points: list[TimeSeriesPoint] = []
        for start, end in self._groups(first, last + 1, width):
            merged = _Bucket()
            for key in range(start, end):
                if key in self.buckets:
                    merged.merge(self.buckets[key])
            span_s = (end - start) * INTERVAL_S
            points.append(_point(start, first, self._covered_s(start, end), span_s, merged))
        return {"interval_s": width * INTERVAL_S, "points": points}

    def _groups(self, first: int, end: int, width: int) -> list[tuple[int, int]]:
        """Bucket keys ``[start, end)`` of each point; an edge point covering less than ``MIN_COVERED_S``
        of the run joins its neighbour (a sliver's rate is noise; floored, it was a false drop)."""
        groups = [(start, min(start + width, end)) for start in range(first, end, width)]
        if len(groups) > 1 and self._covered_s(*groups[-1]) < MIN_COVERED_S:
            groups[-2:] = [(groups[-2][0], groups[-1][1])]
        if len(groups) > 1 and self._covered_s(*groups[0]) < MIN_COVERED_S:
            groups[:2] = [(groups[0][0], groups[1][1])]
        return groups

    def _covered_s(self, start_key: int, end_key: int) -> float:
        """Seconds of buckets ``[start_key, end_key)`` within the requests' span: rates at the edges of
        the run are per second covered, not diluted by the part of a bucket before or after it."""
        start, end = start_key * INTERVAL_S, end_key * INTERVAL_S
        if self.first_epoch_s is not None and self.last_epoch_s is not None:
            covered = min(end, self.last_epoch_s) - max(start, self.first_epoch_s)
            if covered > 0.0:
                return covered
        return end - start


def _point(key: int, first: int, seconds: float, width_s: float, bucket: _Bucket) -> TimeSeriesPoint:
    return {
        "epoch_s": key * INTERVAL_S,
        "offset_s": (key - first) * INTERVAL_S,
        "covered_s": min(seconds, width_s),
        "users": bucket.users,
        **_figures(seconds, bucket),
        "by_name": {name: _figures(seconds, part) for name, part in sorted(bucket.by_name.items())},
    }


def _figures(seconds: float, bucket: _Bucket) -> TimeSeriesFigures:
    ttft_p50, ttft_p95 = bucket.ttft_ms.quantiles((0.5, 0.95))
    e2e_p50, e2e_p95 = bucket.e2e_ms.quantiles((0.5, 0.95))
    itl_p50, itl_p95 = bucket.itl_ms.quantiles((0.5, 0.95))
    return {
        "requests": bucket.requests,
        "rps": bucket.requests / seconds,
        "failures_by_kind": dict(sorted(bucket.failures_by_kind.items())),
        "output_tokens_per_s": bucket.output_tokens / seconds,
        "ttft_p50_ms": ttft_p50,
        "ttft_p95_ms": ttft_p95,
        "e2e_p50_ms": e2e_p50,
        "e2e_p95_ms": e2e_p95,
        "itl_p50_ms": itl_p50,
        "itl_p95_ms": itl_p95,
    }
