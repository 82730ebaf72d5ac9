"""Workers and master: one payload on Locust's stats channel, one custom message back.

A worker adds everything it aggregated since its last report (summary, per-phase statistics, time
series, goodput and open-model counters, all mergeable: histograms and counters, never
per-request lists) under :data:`PAYLOAD_KEY` of the ``report_to_master`` data, then starts afresh.
The master merges each ``worker_report``: bucket counts and counters add exactly, so the merged
percentiles are those of one process recording it all. A malformed part is counted and dropped
*before* anything is merged, so a bad report never leaves a half-merged summary.

The master tells its workers, with :data:`RUN_MESSAGE`, how many they are (each takes that share of
the arrival rate), each its own place among them (its share of a prompt list: disjoint from the
others') and which phase of the load shape runs. It is sent when a test starts, before Locust's spawn
messages (the same channel keeps the order), and when a shape enters a phase.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ._arrival import ArrivalStats
from ._goodput import GoodputCounter
from ._histogram import LogHistogram
from ._phases import Phase, PhaseAggregator, PhaseInfo
from ._run_state import Role, RunState, role_of, state_of
from ._summary import LLMSummary
from ._timeseries import TimeSeries
from ._workload_stats import WorkloadStats

__all__ = [
    "PAYLOAD_KEY",
    "RUN_MESSAGE",
    "absorb_report",
    "announce_phase",
    "broadcast",
    "follow_run_message",
    "take_report",
    "watch_workers",
]

PAYLOAD_KEY = "locust_aiapi"
"""Key of our data in Locust's worker stats report."""

RUN_MESSAGE = "locust_aiapi_run"
"""Master -> each worker: ``{"workers": n, "index": its place 0..n-1, "phase": index or None}``."""

log = logging.getLogger("locust_aiapi")


def take_report(state: RunState) -> dict[str, Any] | None:
    """The worker's payload for one report: everything since the last one (None if nothing)."""
    parts: dict[str, Any] = {}
    if state.summary.by_key:
        parts["summary"] = state.summary.to_dict()
        state.summary.reset()
    for key, part in (
        ("phases", state.phases.take_report()),
        ("series", state.series.take_report()),
        ("goodput", state.goodput.take_report()),
        ("arrival", state.arrival.take_report()),
        ("workload", state.workload.take_report()),
        ("loop_lag", state.loop_lag.take_report()),
    ):
        if part is not None:
            parts[key] = part
    return parts or None


def absorb_report(state: RunState, client_id: str, data: dict[str, Any]) -> None:
    """Merge one worker report into the master's state; a malformed one is counted, not merged."""
    payload = data.get(PAYLOAD_KEY)
    if payload is None or state.ledger is None:
        return
    try:
        parts = _parse(payload)
        loop_lag = _loop_lag(payload)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        state.ledger.rejected_reports += 1
        log.error("locust-aiapi: ignored a malformed report from worker %s: %s", client_id, exc)
        return
    summary, phases, series, goodput, arrival, workload = parts
    state.summary.merge(summary)
    state.phases.merge(phases)
    state.series.merge(series)
    state.goodput.merge(goodput)
    state.arrival.merge(arrival)
    state.workload.merge(workload)
    if loop_lag is not None:
        state.loop_lag.absorb(loop_lag)
    requests = sum(stats.requests for stats in summary.by_key.values())
    state.ledger.note_report(client_id, requests, time.monotonic(), summary.total.client_lag_ms)


def _loop_lag(payload: Any) -> LogHistogram | None:
    data = payload.get("loop_lag") if isinstance(payload, dict) else None
    return None if data is None else LogHistogram.from_dict(data)


def _parse(
    payload: Any,
) -> tuple[LLMSummary, PhaseAggregator, TimeSeries, GoodputCounter, ArrivalStats, WorkloadStats]:
    """Every part of a payload, parsed into fresh aggregates (raises on anything malformed)."""
    if not isinstance(payload, dict):
        raise ValueError(f"expected a mapping, got {type(payload).__name__}")
    summary = LLMSummary.from_dict(payload["summary"]) if "summary" in payload else LLMSummary()
    phases, series, goodput, arrival = PhaseAggregator(), TimeSeries(), GoodputCounter(), ArrivalStats()
    workload = WorkloadStats()
    for key, target in (
        ("phases", phases),
        ("series", series),
        ("goodput", goodput),
        ("arrival", arrival),
        ("workload", workload),
    ):
        if payload.get(key) is not None:
            target.absorb(payload[key])
    return summary, phases, series, goodput, arrival, workload


def missing_workers(runner: Any) -> set[str]:
    """Ids of the workers the master currently counts as missing (no heartbeat)."""
    clients = getattr(runner, "clients", None)
    if clients is None:
        return set()
    return {str(client.id) for client in clients.missing}


def watch_workers(environment: Any, sleep: Callable[[float], None]) -> None:
    """Greenlet body on the master: record workers as they go missing (Locust fires no event), and
    when the set of workers changes during a test (one lost, one joined: Locust moves users without a
    test start), tell them all their new places."""
    places: tuple[str, ...] = ()
    while True:
        state = state_of(environment)
        if state is not None and state.ledger is not None:
            try:
                state.ledger.note_missing(missing_workers(environment.runner), time.monotonic())
                now = _places(environment.runner, starting=False)
                if state.running and places and now != places:
                    broadcast(environment, state.phases.current)
                places = now
            except Exception:  # a watcher must never take the run down
                log.exception("locust-aiapi: could not check the workers")
        sleep(1.0)


def announce_phase(environment: Any, phase: Phase) -> None:
    """The shape's process entered a phase: record it, and tell the workers."""
    state = state_of(environment)
    if state is None:
        return
    now = time.perf_counter()
    info = PhaseInfo(phase.index, phase.label, phase.users, phase.spawn_rate, phase.duration_s, now)
    state.enter_phase(info)
    if role_of(environment) is Role.MASTER:
        broadcast(environment, phase.index)


def broadcast(environment: Any, phase: int | None, starting: bool = False) -> None:
    """To each worker that takes users (``starting``: each connected one): how many they are, its
    place among them, the phase."""
    runner = environment.runner
    ids = _places(runner, starting)
    if not ids:
        runner.send_message(RUN_MESSAGE, {"workers": 1, "phase": phase})
    for index, client_id in enumerate(ids):
        runner.send_message(RUN_MESSAGE, {"workers": len(ids), "index": index, "phase": phase}, client_id)


def _places(runner: Any, starting: bool) -> tuple[str, ...]:
    """The ids of the workers that take users, in Locust's own numbering (a stable order): when a test
    starts every connected one; during it those spawning or running (one that joined and was given no
    users stays ready: a share of its own would never be sent)."""
    clients = runner.clients
    nodes = clients.spawning + clients.running
    if starting or not nodes:
        nodes = clients.ready + nodes
    indexes = getattr(runner, "worker_indexes", {})
    return tuple(sorted((str(c.id) for c in nodes),
                        key=lambda client_id: (indexes.get(client_id, 1 << 30), client_id)))  # fmt: skip


def follow_run_message(environment: Any, msg: Any, **_: Any) -> None:
    """Worker: the master said how many workers there are and which phase runs."""
    state = state_of(environment)
    if state is None:
        return
    data = msg.data or {}
    phase = data.get("phase")
    workers = max(1, int(data.get("workers") or 1))
    state.follow_phase(None if phase is None else int(phase), 1.0 / workers, time.perf_counter())
    index = data.get("index")
    if index is not None and 0 <= (place := int(index)) < workers:
        state.follow_place(place, workers)
