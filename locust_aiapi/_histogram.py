"""A mergeable log-bucketed histogram with a guaranteed relative error (DDSketch-style).

Why this shape: a load test wants percentiles over every sample of a long run, computed in O(1) per
sample, and the counts of many Locust workers merged exactly on the master. Log buckets give all three.

Buckets. With ``gamma = (1 + a) / (1 - a)`` (``a`` is ``relative_accuracy``), a value ``x`` goes to bucket
``i = ceil(log(x) / log(gamma))``, the bucket covering ``(gamma**(i-1), gamma**i]``. Its representative
``2 * gamma**i / (gamma + 1)`` is within a relative ``a`` of every value in the bucket. Values at or below
:data:`MIN_INDEXABLE` (zero included) are counted apart and estimated as the smallest sample.

Rank definition. ``quantile(q)`` estimates the *nearest-rank* quantile: sort the ``n`` samples ascending and
take the one at 1-based rank ``max(1, ceil(q * n))``. The estimate is clamped into ``[min, max]``; rank 1 and
rank ``n`` return the exact ``min`` and ``max``, so ``quantile(1.0) == max`` and a lone sample comes back as
itself. Every other estimate is within a relative ``a`` of the true nearest-rank sample.

``count``, ``sum``, ``min`` and ``max`` are kept exactly beside the buckets. Bucketing is a pure function of
the value, so merging histograms gives exactly the buckets of one histogram fed every value (``sum`` differs
only by float addition order).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any

__all__ = ["MIN_INDEXABLE", "LogHistogram"]

MIN_INDEXABLE = 1e-9
"""Values at or below this go to the zero bucket (their logarithm would need absurd bucket indices)."""

_INF = math.inf
_log = math.log
_ceil = math.ceil


def _nearest_rank(q: float, count: int) -> int:
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q!r}")
    # q * count can land a hair above an integer (0.07 * 100 == 7.000000000000001); the tiny shrink keeps
    # the rank a person computing ceil(q * n) by hand expects.
    return max(1, _ceil(q * count * (1.0 - 1e-12)))


DEFAULT_RELATIVE_ACCURACY = 0.005
"""Relative error of every quantile (0.5 %): all histograms of a run share it, so merges are exact."""


class LogHistogram:
    """Histogram of non-negative values whose quantiles are within ``relative_accuracy`` of the truth."""

    __slots__ = (
        "_buckets",
        "_count",
        "_gamma",
        "_log_gamma",
        "_max",
        "_min",
        "_sum",
        "_zero_count",
        "relative_accuracy",
    )

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError(f"relative_accuracy must be within (0, 1), got {relative_accuracy!r}")
        self.relative_accuracy = relative_accuracy
        self._gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._log_gamma = math.log(self._gamma)
        self._buckets: dict[int, int] = {}
        self._zero_count = 0
        self._count = 0
        self._sum = 0.0
        self._min = _INF
        self._max = -_INF

    def add(self, value: float) -> None:
        """Record one value. Raises ValueError for negative, NaN or infinite values."""
        if not 0.0 <= value < _INF:  # also rejects NaN
            raise ValueError(f"LogHistogram takes finite non-negative values, got {value!r}")
        if value > MIN_INDEXABLE:
            key = _ceil(_log(value) / self._log_gamma)
            buckets = self._buckets
            buckets[key] = buckets.get(key, 0) + 1
        else:
            self._zero_count += 1
        self._count += 1
        self._sum += value
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value

    def add_all(self, values: Sequence[float], scale: float = 1.0) -> None:
        """``add(value * scale)`` for each value in turn, in one call: for the per-read values of a record
        (its client lags: one per chunk, ~4 calls less each). A bad value raises as ``add`` would, with
        the values before it recorded."""
        scaled = [value * scale for value in values] if scale != 1.0 else list(values)
        if not scaled:
            return
        low = min(scaled)
        if not (low >= 0.0 and sum(scaled) < _INF):  # a NaN or an infinity makes the sum fail the test
            for value in scaled:
                self.add(value)
            return
        log_gamma, buckets = self._log_gamma, self._buckets
        total, zeros = self._sum, 0
        for value in scaled:
            total += value
            if value > MIN_INDEXABLE:
                key = _ceil(_log(value) / log_gamma)
                buckets[key] = buckets.get(key, 0) + 1
            else:
                zeros += 1
        self._sum = total
        self._zero_count += zeros
        self._count += len(scaled)
        if low < self._min:
            self._min = low
        high = max(scaled)
        if high > self._max:
            self._max = high

    @property
    def count(self) -> int:
        return self._count

    @property
    def sum(self) -> float:
        return self._sum

    @property
    def zero_count(self) -> int:
        return self._zero_count

    @property
    def min(self) -> float | None:
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        return self._max if self._count else None

    @property
    def mean(self) -> float | None:
        return self._sum / self._count if self._count else None

    def bucket_counts(self) -> dict[int, int]:
        """A copy of the sparse buckets: bucket index -> number of values."""
        return dict(self._buckets)

    def quantile(self, q: float) -> float | None:
        """Nearest-rank quantile estimate for ``q`` in [0, 1]; None when the histogram is empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles at the cost of one pass over the buckets."""
        ranks = [_nearest_rank(q, self._count) for q in qs]
        if not self._count:
            return [None] * len(ranks)
        keys = sorted(self._buckets)
        cumulative = list(accumulate((self._buckets[k] for k in keys), initial=self._zero_count))
        return [self._estimate(rank, keys, cumulative) for rank in ranks]

    def _estimate(self, rank: int, keys: list[int], cumulative: list[int]) -> float:
        if rank >= self._count:
            return self._max
        if rank == 1:
            return self._min
        # cumulative[0] counts the zero bucket, cumulative[i + 1] everything up to bucket keys[i]
        position = bisect_left(cumulative, rank)
        if position == 0:
            return self._min
        estimate = 2.0 * self._gamma ** keys[position - 1] / (self._gamma + 1.0)
        return min(max(estimate, self._min), self._max)

    def merge(self, other: LogHistogram) -> None:
        """Add ``other``'s values into this histogram. Both must share ``relative_accuracy``."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError(
                f"cannot merge histograms of relative accuracy {other.relative_accuracy!r} "
                f"into {self.relative_accuracy!r}"
            )
        buckets = self._buckets
        for key, n in list(other._buckets.items()):
            buckets[key] = buckets.get(key, 0) + n
        self._zero_count += other._zero_count
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def to_dict(self) -> dict[str, Any]:
        """JSON/msgpack-able form: ``min``/``max`` None when empty, buckets as sorted [index, count] pairs."""
        return {
            "relative_accuracy": self.relative_accuracy,
            "count": self._count,
            "sum": self._sum,
            "min": self.min,
            "max": self.max,
            "zero_count": self._zero_count,
            "buckets": [[key, self._buckets[key]] for key in sorted(self._buckets)],
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY
    ) -> LogHistogram:
        """Inverse of :meth:`to_dict`; raises ValueError when the counts are inconsistent, or when the
        histogram's accuracy is not ``relative_accuracy`` (it could not be merged with ours)."""
        try:
            if data["relative_accuracy"] != relative_accuracy:
                raise ValueError(
                    f"a histogram of relative accuracy {data['relative_accuracy']!r} cannot be merged "
                    f"with ours ({relative_accuracy!r})"
                )
            hist = cls(relative_accuracy)
            hist._buckets = {int(key): int(n) for key, n in data["buckets"]}
            hist._zero_count = int(data["zero_count"])
            hist._count = int(data["count"])
            hist._sum = data["sum"]
            hist._min = _INF if data["min"] is None else data["min"]
            hist._max = -_INF if data["max"] is None else data["max"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a LogHistogram dict: {exc!r}") from exc
        if hist._zero_count + sum(hist._buckets.values()) != hist._count:
            raise ValueError("LogHistogram dict: bucket counts do not add up to count")
        return hist

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"LogHistogram(relative_accuracy={self.relative_accuracy!r}, count={self._count}, "
            f"min={self.min!r}, max={self.max!r}, buckets={len(self._buckets)})"
        )
