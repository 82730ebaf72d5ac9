"""The live LLM line on the console during a headless run (one every ``LIVE_INTERVAL_S``).

It follows Locust's own rule for its periodic table (``locust/main.py``): printed on a headless local
run or master, or with ``--print-stats``; never on a worker, and not with ``--only-summary``, which asks
for the end-of-run figures only. Figures come from the run state's time series (requests by the time
they ended), so on a master they are what the workers have reported: the window ends
``WORKER_REPORT_INTERVAL_S`` ago there, so that it holds every worker's report.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent

from ._client_lag import client_lag_report
from ._guard import guarded
from ._run_state import Role, RunState, role_of, state_of
from .render.live import LiveStatus, live_line

__all__ = ["LIVE_INTERVAL_S", "WINDOW_S", "live_status", "start_live_line", "stop_live_line", "wanted"]

LIVE_INTERVAL_S = 5.0
WINDOW_S = 10.0
WORKER_REPORT_INTERVAL_S = 3.0  # locust.runners.WORKER_REPORT_INTERVAL

console = logging.getLogger("locust.stats_logger")


def wanted(environment: Any) -> bool:
    parsed = environment.parsed_options
    if parsed is None or getattr(parsed, "only_summary", False) or role_of(environment) is Role.WORKER:
        return False
    return bool(getattr(parsed, "headless", False) or getattr(parsed, "print_stats", False))


def start_live_line(environment: Any, **_: Any) -> None:
    state = state_of(environment)
    if state is None or not wanted(environment):
        return
    if state.live is not None:
        state.live.kill(block=False)
    started_s = time.monotonic()
    line = guarded(lambda: console.info(live_line(live_status(environment, state, started_s))), "live line")

    def loop() -> None:
        while True:  # killed at test_stop
            gevent.sleep(LIVE_INTERVAL_S)
            line()

    state.live = gevent.spawn(loop)


def stop_live_line(environment: Any, **_: Any) -> None:
    state = state_of(environment)
    if state is not None and state.live is not None:
        state.live.kill(block=False)
        state.live = None


def live_status(environment: Any, state: RunState, started_s: float) -> LiveStatus:
    """The figures of the line now (``started_s``: ``time.monotonic()`` at the test's start)."""
    lag_s = WORKER_REPORT_INTERVAL_S if role_of(environment) is Role.MASTER else 0.0
    end_s = time.time() - lag_s
    test_start_epoch_s = time.time() - (time.monotonic() - started_s)
    # early in a test the window is what has run so far: a rate over 10 s of which 5 ran reads half
    window = state.series.window(max(end_s - WINDOW_S, test_start_epoch_s), end_s)
    total = state.summary.total
    kinds = sorted(total.failures_by_kind.items(), key=lambda item: (-item[1], item[0]))
    phase, total_s = _phase_and_total_s(environment, state)
    lag = client_lag_report(total, state.loop_lag.lag_ms, state.options.max_client_lag_ms)
    return LiveStatus(
        elapsed_s=time.monotonic() - started_s,
        total_s=total_s,
        users=int(environment.runner.user_count),
        phase=phase,
        window_s=window.seconds if window.requests else 0.0,
        requests_per_s=window.requests_per_s,
        ttft_p50_ms=window.ttft_p50_ms,
        ttft_p95_ms=window.ttft_p95_ms,
        output_tokens_per_s=window.output_tokens_per_s,
        requests=total.requests,
        failures_by_kind=tuple(kinds),
        client_lag_p99_ms=lag["p99_ms"],
        client_bound=lag["client_bound"],
    )


def _phase_and_total_s(environment: Any, state: RunState) -> tuple[str | None, float | None]:
    """The shape's current phase ("phase 2/3: 100 users") and planned length, else ``--run-time``."""
    from ._shapes import AIShape

    run_time = getattr(environment.parsed_options, "run_time", None)
    total_s = float(run_time) if run_time else None
    shape = environment.shape_class
    if not isinstance(shape, AIShape):
        return None, total_s
    try:
        plan = shape.phases()
    except ValueError:
        return None, total_s
    durations = [phase.duration_s for phase in plan]
    if all(duration is not None for duration in durations):
        total_s = sum(duration for duration in durations if duration is not None)
    current = state.phases.current
    info = state.phases.info.get(current) if current is not None else None
    if info is None:
        return None, total_s
    return f"phase {info.index + 1}/{len(plan)}: {info.label}", total_s
