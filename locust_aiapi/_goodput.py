"""Goodput: the share of requests that met every per-request SLO (TTFT, ITL, E2E).

Checked once per request when it is recorded, counted per request name in mergeable counters
(workers ship deltas, the master adds them up). A request is *good* when it succeeded and each
configured limit holds; a limit on a metric the request does not have (an embeddings call has no
TTFT, a one-token answer no ITL) does not count against it. Failed requests are never good;
cancelled ones (the run stopped them) are neither good nor counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _metrics
from ._options import AIOptions
from ._records import Outcome, RequestRecord
from ._report_types import GoodputReport, GoodputRow

__all__ = ["SLO", "GoodputCounter"]


@dataclass(frozen=True, slots=True)
class SLO:
    """Per-request limits in milliseconds; None means no limit on that metric."""

    ttft_ms: float | None = None
    itl_ms: float | None = None
    e2e_ms: float | None = None

    @classmethod
    def from_options(cls, options: AIOptions) -> SLO:
        return cls(options.slo_ttft_ms, options.slo_itl_ms, options.slo_e2e_ms)

    @property
    def limits(self) -> dict[str, float]:
        """The configured limits by metric name (empty: no SLO, no goodput)."""
        pairs = (("ttft_ms", self.ttft_ms), ("itl_ms", self.itl_ms), ("e2e_ms", self.e2e_ms))
        return {name: limit for name, limit in pairs if limit is not None}

    def met(self, record: RequestRecord, metrics: _metrics.RecordMetrics | None = None) -> bool:
        if not record.ok:
            return False
        if metrics is None:
            metrics = _metrics.RecordMetrics.of(record)
        for limit, value in (
            (self.ttft_ms, metrics.ttft_ms),
            (self.itl_ms, metrics.itl_ms),
            (self.e2e_ms, metrics.e2e_ms),
        ):
            if limit is not None and value is not None and value > limit:
                return False
        return True


@dataclass
class GoodputCounter:
    """[completed, good] per request name."""

    by_name: dict[str, list[int]] = field(default_factory=dict)

    def add(self, record: RequestRecord, slo: SLO, metrics: _metrics.RecordMetrics | None = None) -> None:
        if record.outcome is Outcome.CANCELLED:
            return
        counts = self.by_name.get(record.name)
        if counts is None:
            counts = self.by_name[record.name] = [0, 0]
        counts[0] += 1
        if slo.met(record, metrics):
            counts[1] += 1

    def take_report(self) -> dict[str, Any] | None:
        if not self.by_name:
            return None
        payload = {name: list(counts) for name, counts in self.by_name.items()}
        self.by_name = {}
        return payload

    def absorb(self, payload: Mapping[str, Any]) -> None:
        """Add a worker's deltas. Raises ValueError when malformed."""
        try:
            parts = {str(name): (int(counts[0]), int(counts[1])) for name, counts in payload.items()}
        except (TypeError, IndexError, ValueError) as exc:
            raise ValueError(f"not a goodput report: {exc!r}") from exc
        for name, (completed, good) in parts.items():
            counts = self.by_name.setdefault(name, [0, 0])
            counts[0] += completed
            counts[1] += good

    def merge(self, other: GoodputCounter) -> None:
        for name, (completed, good) in other.by_name.items():
            counts = self.by_name.setdefault(name, [0, 0])
            counts[0] += completed
            counts[1] += good

    def report(self, slo: SLO, windows_s: Mapping[str, float | None]) -> GoodputReport | None:
        """``{"slo": {...}, "requests": {name: row}, "total": row}``; None without an SLO.

        ``windows_s`` maps each name (and ``"total"``) to its wall-clock window, for good requests/s.
        """
        if not slo.limits:
            return None
        completed = sum(counts[0] for counts in self.by_name.values())
        good = sum(counts[1] for counts in self.by_name.values())
        return {
            "slo": slo.limits,
            "requests": {
                name: _row(counts[0], counts[1], windows_s.get(name))
                for name, counts in sorted(self.by_name.items())
            },
            "total": _row(completed, good, windows_s.get("total")),
        }


def _row(completed: int, good: int, window_s: float | None) -> GoodputRow:
    return {
        "completed": completed,
        "good": good,
        "goodput": good / completed if completed else None,
        "good_per_s": good / window_s if window_s else None,
        "completed_per_s": completed / window_s if window_s else None,
    }
