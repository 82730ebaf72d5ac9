"""Per-phase aggregation: which phase of the load shape each request started in, and its statistics.

A request belongs to the phase that was running when it *started* (its ``start_s``; in the open model
that is the intended start). Each process keeps a timeline of phase changes on its own
``perf_counter`` clock: the shape's process (local run or master) enters phases as it ticks, and a
master tells its workers with a message, which each stamps on arrival — so no clock has to agree
with another, and a phase boundary is off by the message's travel time (well under a millisecond
on a LAN). Workers ship per-phase :class:`NameStats` deltas in their reports; the master merges
them and alone knows the phases' labels, targets and times.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._metrics import RecordMetrics
from ._name_stats import NameStats
from ._records import RequestRecord
from ._report_types import PhaseRow

__all__ = ["Phase", "PhaseAggregator", "PhaseInfo"]


@dataclass(frozen=True, slots=True)
class Phase:
    """One part of a shape's plan: reach ``users`` at ``spawn_rate`` users/s, over [start_s, end_s)."""

    index: int
    label: str
    users: int
    spawn_rate: float
    start_s: float
    duration_s: float | None  # None: until the run is stopped

    @property
    def end_s(self) -> float | None:
        return None if self.duration_s is None else self.start_s + self.duration_s


@dataclass(slots=True)
class PhaseInfo:
    """What the shape's process knows about a phase it entered."""

    index: int
    label: str
    target_users: int
    spawn_rate: float
    planned_duration_s: float | None
    entered_s: float  # perf_counter when the shape entered it
    left_s: float | None = None


@dataclass
class PhaseAggregator:
    """The phase timeline and per-phase statistics of one process."""

    starts_s: list[float] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    stats: dict[int, NameStats] = field(default_factory=dict)
    info: dict[int, PhaseInfo] = field(default_factory=dict)  # shape's process only
    run_start_s: float | None = None

    @property
    def current(self) -> int | None:
        return self.indexes[-1] if self.indexes else None

    def enter(self, index: int, now_s: float) -> bool:
        """Phase ``index`` runs from ``now_s`` on; False when it already was the current one."""
        if self.current == index:
            return False
        if self.starts_s and now_s < self.starts_s[-1]:
            now_s = self.starts_s[-1]  # keep the timeline sorted whatever the caller's clock did
        self.starts_s.append(now_s)
        self.indexes.append(index)
        return True

    def describe(self, info: PhaseInfo) -> None:
        previous = self.info.get(self.indexes[-2]) if len(self.indexes) > 1 else None
        if previous is not None and previous.left_s is None:
            previous.left_s = info.entered_s
        if self.run_start_s is None:
            self.run_start_s = info.entered_s
        self.info[info.index] = info

    def clear(self) -> None:
        """No shape runs: forget the timeline as well as the statistics."""
        self.starts_s, self.indexes, self.stats, self.info = [], [], {}, {}
        self.run_start_s = None

    def reset_data(self, now_s: float) -> None:
        """A test starts (just after the shape entered its first phase): drop the statistics and
        every phase but the one running now, which starts now."""
        self.stats = {}
        if not self.indexes:
            return
        self.starts_s, self.indexes = self.starts_s[-1:], self.indexes[-1:]
        current = self.info.get(self.indexes[0])
        self.info = {}
        self.run_start_s = None
        if current is not None:
            current.entered_s, current.left_s = now_s, None
            self.describe(current)

    def phase_of(self, start_s: float) -> int | None:
        position = bisect_right(self.starts_s, start_s) - 1
        return self.indexes[position] if position >= 0 else None

    def add(self, record: RequestRecord, metrics: RecordMetrics | None = None) -> None:
        index = self.phase_of(record.start_s)
        if index is None:
            return
        stats = self.stats.get(index)
        if stats is None:
            stats = self.stats[index] = NameStats()
        stats.add(record, metrics)

    def take_report(self) -> dict[str, Any] | None:
        """Worker: the per-phase deltas since the last report (None when there are none)."""
        if not self.stats:
            return None
        payload = {str(index): stats.to_dict() for index, stats in self.stats.items()}
        self.stats = {}
        return payload

    def absorb(self, payload: Mapping[str, Any]) -> None:
        """Master: merge a worker's per-phase deltas. Raises ValueError when malformed."""
        parts = {int(index): NameStats.from_dict(data) for index, data in payload.items()}
        for index, part in parts.items():
            self.stats.setdefault(index, NameStats()).merge(part)

    def merge(self, other: PhaseAggregator) -> None:
        """Master: add a worker's per-phase statistics (the timeline is the master's own)."""
        for index, part in other.stats.items():
            self.stats.setdefault(index, NameStats()).merge(part)

    def report(self, now_s: float) -> list[PhaseRow]:
        """One row per phase entered (statistics of the requests that started in it), in order."""
        return [self._row(index, self.info[index], now_s) for index in sorted(self.info)]

    def _row(self, index: int, info: PhaseInfo, now_s: float) -> PhaseRow:
        left = info.left_s if info.left_s is not None else now_s
        return {
            "index": index,
            "label": info.label,
            "target_users": info.target_users,
            "spawn_rate": info.spawn_rate,
            "planned_duration_s": info.planned_duration_s,
            "start_offset_s": info.entered_s - (self.run_start_s or info.entered_s),
            "duration_s": max(0.0, left - info.entered_s),
            **self.stats.get(index, NameStats()).report_row(),
        }
