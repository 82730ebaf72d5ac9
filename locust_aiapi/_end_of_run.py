"""End of a run: the report built once from the run state, then JSON, console, exit code, HTML.

Called by the composition root where the summary is final: at test_stop on a local run, at
quitting on a headless master (after the workers' last reports). Each output is written on its
own: one that fails (a full disk, a value no renderer expected) is logged and the others are still
written, and the thresholds still decide the exit code.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from ._client_lag import client_lag_report
from ._guard import listener_errors
from ._options import AIOptions
from ._pricing import cost_report
from ._report_types import ReportMeta, ReportSections, RunReport, ThresholdResult, run_report
from ._run_config import public_host, run_config
from ._run_state import RunState, state_of
from ._thresholds import Context, evaluate
from .render import render_json
from .render.console import render_summary, render_thresholds
from .render.console_extras import render_extras
from .render.html import render_html

__all__ = [
    "THRESHOLDS_FAILED_EXIT_CODE",
    "build_report",
    "console_width",
    "output_path",
    "print_held",
    "public_host",
    "report_meta",
    "write_outputs",
]

THRESHOLDS_FAILED_EXIT_CODE = 3
"""Process exit code when a threshold fails (1 stays Locust's "requests failed", 2 a usage error)."""

log = logging.getLogger("locust_aiapi")
console = logging.getLogger("locust.stats_logger")


def build_report(state: RunState) -> RunReport:
    """The whole end-of-run report (what ``--ai-summary-json`` holds), thresholds evaluated."""
    summary = state.summary
    workers = state.ledger.as_dict(time.monotonic()) if state.ledger is not None else None
    report = run_report(summary.report_dict(), _sections(state), workers)
    by_worker = state.ledger.client_lag_by_worker if state.ledger is not None else None
    report["client_lag"] = client_lag_report(
        summary.total, state.loop_lag.lag_ms, state.options.max_client_lag_ms, by_worker
    )
    if listener_errors:
        report["listener_errors"] = dict(sorted(listener_errors.items()))
    return report


def _sections(state: RunState) -> ReportSections:
    summary = state.summary
    rows, total = summary.by_name, summary.total
    windows = {name: row.window_s for name, row in rows.items()}
    goodput = state.goodput.report(state.slo, {**windows, "total": total.window_s})
    arrival = state.arrival.report(state.arrival_config)
    thresholds = evaluate(list(state.options.thresholds), Context(rows, total, goodput, arrival))
    return {
        "thresholds": thresholds,
        "thresholds_passed": all(r["passed"] for r in thresholds) if thresholds else None,
        "goodput": goodput,
        "phases": state.phases.report(time.perf_counter()),
        "timeseries": state.series.points(),
        "arrival": arrival,
        "cost": cost_report(summary, state.prices, state.options.pricing),
        "workload": state.workload.report(),
    }


def write_outputs(environment: Any, state: RunState) -> None:
    """Every output of the end of a run. Never raises."""
    try:
        report = build_report(state)
    except Exception:
        log.exception("locust-aiapi could not build its end-of-run report")
        return
    steps: tuple[tuple[str, Callable[[], None]], ...] = (
        ("summary JSON", lambda: _write_json(environment, state, report)),
        ("console summary", lambda: _print(environment, state, report)),
        ("exit code", lambda: _set_exit_code(environment, state, report.get("thresholds") or [])),
        ("HTML report", lambda: _write_html(environment, state, report)),
    )
    for what, step in steps:
        try:
            step()
        except Exception:
            log.exception("locust-aiapi could not write its %s", what)


def output_path(environment: Any, path: str, test_number: int) -> str:
    """Where a file of test ``test_number`` goes: ``path`` itself for a headless run; with the web UI,
    where every Start begins a new test, ``path`` numbered per test (``summary.json`` ->
    ``summary.1.json``, ``summary.2.json`` ...) so a test never overwrites the one before."""
    if getattr(environment, "web_ui", None) is None:
        return path
    root, ext = os.path.splitext(path)
    return f"{root}.{test_number}{ext}"


def _write_json(environment: Any, state: RunState, report: RunReport) -> None:
    path = state.options.summary_json
    path = path and output_path(environment, path, state.tests_started)
    if path:
        with open(path, "wb") as file:
            file.write(render_json(report))


def _print(environment: Any, state: RunState, report: RunReport) -> None:
    width = console_width()
    show = state.options.print_summary and report["total"]["count"]
    if show:
        summary = render_summary(report, width)
        _emit(environment, state, f"\nLLM summary (locust-aiapi)\n{summary}{_lost_line(report)}")
    text = render_thresholds(report.get("thresholds") or [])
    if show:
        text = render_extras(report, width) + ("\n" + text if text else "")
    if text:
        _emit(environment, state, f"\n{text}")


def console_width() -> int:
    """The terminal's width; 120 when the output is not a terminal (a log file, CI) and no COLUMNS."""
    return shutil.get_terminal_size((120, 24)).columns


def _emit(environment: Any, state: RunState, text: str) -> None:
    """Print now, or (headless) hold it for :func:`print_held`: Locust prints its own tables at
    shutdown, after ``quitting``, and our summary must be the last thing on the screen."""
    parsed = environment.parsed_options
    if parsed is not None and getattr(parsed, "headless", False):
        state.console_text.append(text)
    else:
        console.info("%s", text)


def print_held(state: RunState) -> None:
    """Listener work for Locust's ``quit`` event, fired after its final tables: print what was held."""
    for text in state.console_text:
        console.info("%s", text)
    state.console_text.clear()


def _lost_line(report: RunReport) -> str:
    workers = report.get("workers")
    lost = workers["lost_ids"] if workers else []
    if not lost:
        return ""
    return f"\n{len(lost)} worker(s) lost during the run: {', '.join(lost)} (earlier reports kept)\n"


def _set_exit_code(environment: Any, state: RunState, results: list[ThresholdResult]) -> None:
    """Thresholds decide, as in k6: any failure -> 3; all pass -> 0, even if some requests failed
    (that is what ``error_rate<...`` is for) unless user code raised. Without thresholds, Locust decides."""
    if not results:
        return
    if environment.process_exit_code not in (None, state.exit_code):
        return  # the locustfile set its own code: leave it
    code: int | None = THRESHOLDS_FAILED_EXIT_CODE
    if all(result["passed"] for result in results):
        code = None if _user_code_failed(environment) else 0
    environment.process_exit_code = state.exit_code = code


def _user_code_failed(environment: Any) -> bool:
    from locust import log as locust_log

    runner = environment.runner
    return bool(getattr(runner, "exceptions", None)) or bool(locust_log.unhandled_greenlet_exception)


def _write_html(environment: Any, state: RunState, report: RunReport) -> None:
    if not state.options.report_html:
        return
    path = output_path(environment, state.options.report_html, state.tests_started)
    page = render_html(report, report_meta(environment, report))
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    _emit(environment, state, f"LLM report written to {path}")


def report_meta(environment: Any, report: RunReport) -> ReportMeta:
    shape = environment.shape_class
    first_s, last_s = report["total"]["first_start_epoch_s"], report["total"]["last_end_epoch_s"]
    window = None
    if first_s and last_s:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(first_s))
        window = f"{start}, {last_s - first_s:.0f} s"
    parsed = environment.parsed_options
    workers = report.get("workers")
    state = state_of(environment)
    return {
        "host": public_host(environment.host),
        "locustfile": getattr(parsed, "locustfile", None) if parsed is not None else None,
        "shape": type(shape).__name__ if shape is not None else None,
        "run": window,
        "workers": workers["reported"] if workers else None,
        "config": run_config(environment, state.options if state is not None else AIOptions(), report),
    }
