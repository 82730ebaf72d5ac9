"""Workers ship their LLM metrics to the master on Locust's own stats channel.

A worker adds what it aggregated since its last report (an :class:`LLMSummary` as mergeable
histograms and counters, never per-request lists) to the ``report_to_master`` payload, then
starts afresh. The master merges each ``worker_report`` into its summary: bucket counts and
counters add exactly, so the merged percentiles are those of one process recording it all.

The master also keeps a ledger per worker: what it reported, and whether it went missing
(stopped heartbeating). A lost worker's earlier reports stay in the summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._report_types import WorkersReport
from ._summary import LLMSummary

__all__ = ["PAYLOAD_KEY", "WorkerLedger", "absorb_report", "take_report"]

PAYLOAD_KEY = "locust_aiapi"
"""Key of our data in Locust's worker stats report."""

log = logging.getLogger("locust_aiapi")


def take_report(summary: LLMSummary) -> dict[str, Any] | None:
    """The worker's payload for one report: everything since the last one (None if nothing)."""
    if not summary.by_key:
        return None
    payload = summary.to_dict()
    summary.reset()
    return payload


@dataclass
class WorkerLedger:
    """What the master knows about its workers' contributions."""

    requests_by_worker: dict[str, int] = field(default_factory=dict)
    reports_by_worker: dict[str, int] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    rejected_reports: int = 0

    def note_missing(self, missing: set[str]) -> None:
        newly = missing - self.lost
        for client_id in sorted(newly):
            log.warning("locust-aiapi: worker %s was lost; what it reported before is kept", client_id)
        self.lost |= newly

    def as_dict(self) -> WorkersReport:
        return {
            "reported": len(self.reports_by_worker),
            "lost": len(self.lost),
            "lost_ids": sorted(self.lost),
            "requests_by_worker": dict(sorted(self.requests_by_worker.items())),
            "rejected_reports": self.rejected_reports,
        }


def absorb_report(summary: LLMSummary, ledger: WorkerLedger, client_id: str, data: Mapping[str, Any]) -> None:
    """Merge one worker report into the master's summary (a malformed one is counted, not fatal)."""
    payload = data.get(PAYLOAD_KEY)
    if payload is None:
        return
    try:
        part = LLMSummary.from_dict(payload)
    except ValueError:
        ledger.rejected_reports += 1
        log.error("locust-aiapi: ignored a malformed report from worker %s", client_id)
        return
    summary.merge(part)
    ledger.reports_by_worker[client_id] = ledger.reports_by_worker.get(client_id, 0) + 1
    ledger.requests_by_worker[client_id] = ledger.requests_by_worker.get(client_id, 0) + sum(
        stats.requests for stats in part.by_key.values()
    )


def missing_workers(runner: Any) -> set[str]:
    """Ids of the workers the master currently counts as missing (no heartbeat)."""
    clients = getattr(runner, "clients", None)
    if clients is None:
        return set()
    return {str(client.id) for client in clients.missing}


def watch_workers(runner: Any, ledger: WorkerLedger, sleep: Callable[[float], None]) -> None:
    """Greenlet body on the master: record workers as they go missing (Locust fires no event)."""
    while True:
        try:
            ledger.note_missing(missing_workers(runner))
        except Exception:  # a listener must never take the run down
            log.exception("locust-aiapi: could not check the workers")
        sleep(1.0)
