"""The LLM summary of a run: a :class:`NameStats` row per (request name, model).

The "Aggregated" row is built on demand by merging the per-name rows (exact for counts, tokens and histogram
buckets), so :meth:`LLMSummary.add` touches one row. ``add`` runs in Locust's one gevent thread: no locks.
``to_dict``/``from_dict`` carry the full mergeable state (workers -> master); ``report_dict`` is the
human/CI-facing summary (typed in :mod:`_report_types`), which :mod:`locust_aiapi.render` turns into text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ._metrics import RecordMetrics
from ._name_stats import NameStats, describe, widen_window
from ._records import RequestRecord
from ._report_types import SummaryReport

__all__ = ["LLMSummary", "NameStats", "describe", "widen_window"]


class LLMSummary:
    """:class:`NameStats` per (request name, model) for every request of a run.

    Reports group by request name (``by_name``); the Prometheus exporter also labels by model.
    The "Aggregated" total is built on demand.
    """

    __slots__ = ("by_key",)

    FORMAT_VERSION = 7  # 4: client lag, stamped requests; 5: cached prompt tokens; 6: cache writes; 7: 1-hour

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], NameStats] = {}

    def add(self, record: RequestRecord, metrics: RecordMetrics | None = None) -> None:
        key = (record.name, record.model)
        stats = self.by_key.get(key)
        if stats is None:
            stats = self.by_key[key] = NameStats()
        stats.add(record, metrics)

    @property
    def by_name(self) -> dict[str, NameStats]:
        """Rows per request name, models merged (a fresh copy on each access)."""
        rows: dict[str, NameStats] = {}
        for (name, _model), stats in self.by_key.items():
            rows.setdefault(name, NameStats()).merge(stats)
        return rows

    @property
    def total(self) -> NameStats:
        """The "Aggregated" row: a fresh NameStats merging every row, rebuilt on each access."""
        total = NameStats()
        for stats in self.by_key.values():
            total.merge(stats)
        return total

    def reset(self) -> None:
        self.by_key.clear()

    def merge(self, other: LLMSummary) -> None:
        for key, stats in other.by_key.items():
            self.by_key.setdefault(key, NameStats()).merge(stats)

    def to_dict(self) -> dict[str, Any]:
        """Full mergeable state, JSON/msgpack-able (what a worker ships to the master)."""
        return {
            "format": self.FORMAT_VERSION,
            "rows": [
                {"name": name, "model": model, "stats": stats.to_dict()}
                for (name, model), stats in self.by_key.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LLMSummary:
        if data.get("format") != cls.FORMAT_VERSION:
            raise ValueError(f"unsupported LLMSummary format {data.get('format')!r}")
        summary = cls()
        try:
            for row in data["rows"]:
                summary.by_key[(str(row["name"]), str(row["model"]))] = NameStats.from_dict(row["stats"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an LLMSummary dict: {exc!r}") from exc
        return summary

    def report_dict(self, generated_at: datetime | None = None) -> SummaryReport:
        """``{"generated_at": iso8601, "requests": {name: row}, "total": row}`` with unrounded floats."""
        when = generated_at or datetime.now(timezone.utc)
        by_name = self.by_name
        return {
            "generated_at": when.isoformat(),
            "requests": {name: by_name[name].report_row() for name in sorted(by_name)},
            "total": self.total.report_row(),
        }
