"""The master's ledger of its workers: what each reported, and whether it went missing.

A worker is *lost* while the master counts it as missing (no heartbeat). What it reported before
stays in the summary. A worker that reports again (it was paused, or the network stalled) is no
longer lost; the ledger keeps how long it was missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ._histogram import LogHistogram
from ._report_types import WorkersReport

__all__ = ["WorkerLedger"]

log = logging.getLogger("locust_aiapi")


@dataclass
class WorkerLedger:
    """What the master knows about its workers' contributions."""

    requests_by_worker: dict[str, int] = field(default_factory=dict)
    reports_by_worker: dict[str, int] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    missing_since_s: dict[str, float] = field(default_factory=dict)
    missing_s: dict[str, float] = field(default_factory=dict)  # closed spans, per worker
    rejected_reports: int = 0
    client_lag_by_worker: dict[str, LogHistogram] = field(default_factory=dict)

    def note_missing(self, missing: set[str], now_s: float) -> None:
        """The workers the master counts as missing now (called about once a second)."""
        for client_id in sorted(missing - self.lost):
            log.warning("locust-aiapi: worker %s was lost; what it reported before is kept", client_id)
            self.missing_since_s[client_id] = now_s
        self.lost |= missing

    def note_report(
        self, client_id: str, requests: int, now_s: float, client_lag_ms: LogHistogram | None = None
    ) -> None:
        """A report from ``client_id`` was merged: it is alive. ``client_lag_ms``: its reads' client lag."""
        if client_lag_ms is not None and client_lag_ms.count:
            self.client_lag_by_worker.setdefault(client_id, LogHistogram()).merge(client_lag_ms)
        self.reports_by_worker[client_id] = self.reports_by_worker.get(client_id, 0) + 1
        self.requests_by_worker[client_id] = self.requests_by_worker.get(client_id, 0) + requests
        if client_id in self.lost:
            self.lost.discard(client_id)
            since = self.missing_since_s.pop(client_id, now_s)
            self.missing_s[client_id] = self.missing_s.get(client_id, 0.0) + max(0.0, now_s - since)
            log.warning(
                "locust-aiapi: worker %s reports again after %.0f s missing",
                client_id,
                self.missing_s[client_id],
            )

    def new_test(self) -> WorkerLedger:
        """The ledger for the next test of this master: who is lost stays lost."""
        return WorkerLedger(lost=set(self.lost), missing_since_s=dict(self.missing_since_s))

    def as_dict(self, now_s: float) -> WorkersReport:
        missing = dict(self.missing_s)
        for client_id, since in self.missing_since_s.items():
            missing[client_id] = missing.get(client_id, 0.0) + max(0.0, now_s - since)
        return {
            "reported": len(self.reports_by_worker),
            "lost": len(self.lost),
            "lost_ids": sorted(self.lost),
            "missing_s": {client_id: round(s, 1) for client_id, s in sorted(missing.items())},
            "requests_by_worker": dict(sorted(self.requests_by_worker.items())),
            "rejected_reports": self.rejected_reports,
        }
