"""End of a run: the extra JSON sections, thresholds and the exit code, console lines, HTML report.

Called by the plugin's ``_write_outputs`` where the summary is final: at test_stop on a local
run, at quitting on a headless master (after the workers' last reports).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ._extras import extras_for
from ._options import ensure_writable
from ._pricing import cost_report
from ._report_types import ReportMeta, ReportSections, RunReport, ThresholdResult
from ._summary import LLMSummary
from ._thresholds import Context, evaluate, split_thresholds
from .render.console import render_extras, render_thresholds
from .render.html import render_html

__all__ = ["THRESHOLDS_FAILED_EXIT_CODE", "check_report_path", "finish", "report_sections"]

THRESHOLDS_FAILED_EXIT_CODE = 3
"""Process exit code when a threshold fails (1 stays Locust's "requests failed", 2 a usage error)."""

log = logging.getLogger("locust_aiapi")
console = logging.getLogger("locust.stats_logger")


def _option(environment: Any, name: str) -> Any:
    return getattr(environment.parsed_options, name, None) if environment.parsed_options is not None else None


def check_report_path(environment: Any) -> None:
    """At init: the HTML report's directory exists (created) and the file is writable."""
    path = _option(environment, "ai_report_html")
    if path:
        ensure_writable("--ai-report-html", path)


def report_sections(environment: Any, summary: LLMSummary) -> ReportSections:
    """The sections this package adds to the JSON summary (thresholds evaluated here)."""
    extras = extras_for(environment)
    rows, total = summary.by_name, summary.total
    windows = {name: row.window_s for name, row in rows.items()}
    goodput = extras.goodput.report(extras.slo, {**windows, "total": total.window_s})
    arrival = extras.arrival.report(extras.arrival_config)
    pricing_path = _option(environment, "ai_pricing")
    thresholds = evaluate(
        split_thresholds(_option(environment, "ai_threshold")), Context(rows, total, goodput, arrival)
    )
    return {
        "thresholds": thresholds,
        "thresholds_passed": all(r["passed"] for r in thresholds) if thresholds else None,
        "goodput": goodput,
        "phases": extras.phases.report(time.perf_counter()),
        "timeseries": extras.series.points(),
        "arrival": arrival,
        "cost": cost_report(summary, extras.prices, pricing_path),
    }


def finish(environment: Any, report: RunReport, print_summary: bool) -> None:
    """Console lines, the process exit code, the HTML report. Never raises."""
    try:
        text = render_thresholds(report.get("thresholds") or [])
        if print_summary and report["total"]["count"]:
            text = render_extras(report) + ("\n" + text if text else "")
        if text:
            console.info("\n%s", text)
        _set_exit_code(environment, report.get("thresholds") or [])
        _write_html(environment, report)
    except Exception:
        log.exception("locust-aiapi could not finish its report")


def _set_exit_code(environment: Any, results: list[ThresholdResult]) -> None:
    """Thresholds decide, as in k6: any failure -> 3; all pass -> 0, even if some requests failed
    (that is what ``error_rate<...`` is for) unless user code raised. Without thresholds, Locust decides."""
    if not results:
        return
    extras = extras_for(environment)
    if environment.process_exit_code not in (None, extras.exit_code):
        return  # the locustfile set its own code: leave it
    code: int | None = THRESHOLDS_FAILED_EXIT_CODE
    if all(result["passed"] for result in results):
        code = None if _user_code_failed(environment) else 0
    environment.process_exit_code = extras.exit_code = code


def _user_code_failed(environment: Any) -> bool:
    from locust import log as locust_log

    runner = environment.runner
    return bool(getattr(runner, "exceptions", None)) or bool(locust_log.unhandled_greenlet_exception)


def _write_html(environment: Any, report: RunReport) -> None:
    path = _option(environment, "ai_report_html")
    if not path:
        return
    page = render_html(report, _meta(environment, report))
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    console.info("LLM report written to %s", path)


def _meta(environment: Any, report: RunReport) -> ReportMeta:
    shape = environment.shape_class
    first_s, last_s = report["total"]["first_start_epoch_s"], report["total"]["last_end_epoch_s"]
    window = None
    if first_s and last_s:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(first_s))
        window = f"{start}, {last_s - first_s:.0f} s"
    workers = report.get("workers")
    return {
        "host": _public_host(environment.host),
        "locustfile": _option(environment, "locustfile"),
        "shape": type(shape).__name__ if shape is not None else None,
        "run": window,
        "workers": workers["reported"] if workers else None,
    }


def _public_host(host: str | None) -> str | None:
    """The host without any user:password part."""
    if not host or "@" not in host:
        return host
    scheme, sep, rest = host.partition("://")
    return f"{scheme}{sep}{rest.split('@', 1)[1]}" if sep else host.split("@", 1)[1]
