"""Client lag and the ``client_bound`` verdict, for the console and the HTML report (from the report only)."""

from __future__ import annotations

from html import escape

from .._report_types import ClientLagReport, RunReport
from .format import CONSOLE
from .text import wrap

__all__ = ["console_lines", "html_section", "short_text", "summary_line"]

_SOURCES = {"kernel": "kernel receive stamps", "loop_probe": "event-loop probe, no kernel stamps"}


def _ms(value: float | None) -> str:
    return CONSOLE.number(value, 2, trim=True)


def summary_line(lag: ClientLagReport) -> str | None:
    """``Client lag (kernel receive stamps): p50 … p99 … max … ms, limit 5 ms`` (None: nothing measured)."""
    source = lag["source"]
    if source is None:
        return None
    return (
        f"Client lag ({_SOURCES[source]}): p50 {_ms(lag['p50_ms'])} ms, p99 {_ms(lag['p99_ms'])} ms, "
        f"max {_ms(lag['max_ms'])} ms (limit p99 {_ms(lag['max_client_lag_ms'])} ms)"
    )


def short_text(p99_ms: float | None, client_bound: bool) -> str | None:
    """``lag p99 0.42 ms`` (live line, LLM tab); over the limit ``CLIENT-BOUND lag p99 12 ms``."""
    if p99_ms is None:
        return None
    figure = f"lag p99 {CONSOLE.number(p99_ms, 2 if p99_ms < 1 else 1 if p99_ms < 10 else 0)} ms"
    return f"CLIENT-BOUND {figure}" if client_bound else figure


def console_lines(report: RunReport, width: int) -> list[str]:
    lag = report.get("client_lag")
    line = summary_line(lag) if lag is not None else None
    if lag is None or line is None:
        return []
    lines = wrap(line, width)
    if lag["client_bound"]:
        lines += wrap(f"CLIENT-BOUND: {lag['advice']}", width, "  ")
    return lines


def html_section(report: RunReport) -> str:
    lag = report.get("client_lag")
    line = summary_line(lag) if lag is not None else None
    if lag is None or line is None:
        return ""
    verdict = (
        f'<p class="verdict fail">Client-bound: {escape(lag["advice"] or "")}</p>'
        if lag["client_bound"]
        else '<p class="verdict pass">Not client-bound: the load generator read what arrived in time</p>'
    )
    workers = "".join(
        f"<li>{escape(worker)}: p99 {escape(_ms(row['p99']))} ms, max {escape(_ms(row['max']))} ms</li>"
        for worker, row in lag["by_worker"].items()
    )
    per_worker = f"<ul>{workers}</ul>" if workers else ""
    return f'<section class="notes"><h2>Client lag</h2>{verdict}<p>{escape(line)}</p>{per_worker}</section>'
