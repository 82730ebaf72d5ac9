"""The HTML run report: one self-contained page (inline CSS and SVG, no script, opens offline).

Built only from the report (``report``, what ``--ai-summary-json`` writes) and a few facts about the run
(``meta``), so what the page shows is exactly what CI reads.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from importlib.resources import files

from .._report_types import ReportMeta, RunReport
from . import client_lag, workload
from . import html_charts as charts
from . import html_tables as tables
from .console import token_notes
from .format import HTML

__all__ = ["render_html"]

_DEFINITIONS = (
    ("ttft_ms", "request start → first chunk carrying a token (content, reasoning or tool call)"),
    ("ttfc_ms", "request start → first chunk carrying visible content"),
    ("itl_ms", "(last token − first token) / (output tokens − 1)"),
    ("tpot_ms", "(end of stream − first token) / (output tokens − 1)"),
    ("e2e_ms", "request start → end of the response body"),
    ("goodput", "share of completed requests that succeeded and met every per-request SLO"),
    ("open model", "latency counted from each request's intended start; dropped = starts no user could take"),
)


_num, _pct = HTML.number, HTML.percent


def _header(report: RunReport, meta: ReportMeta) -> str:
    shown = {key: value for key, value in meta.items() if key != "config" and value not in (None, "")}
    facts = " · ".join(escape(f"{key}: {value}") for key, value in shown.items())
    return (
        f'<header><h1>LLM load test report</h1><p class="meta">{facts}</p>'
        f'<p class="meta">Generated {escape(report["generated_at"])}</p></header>'
    )


def _verdict(report: RunReport) -> str:
    results = report["thresholds"]
    if not results:
        return '<p class="verdict none">No thresholds set (--ai-threshold)</p>'
    failed = sum(1 for r in results if not r["passed"])
    if failed:
        return f'<p class="verdict fail">Thresholds FAILED: {failed} of {len(results)}</p>'
    return f'<p class="verdict pass">Thresholds passed: all {len(results)}</p>'


def _kpis(report: RunReport) -> str:
    total, goodput, arrival = report["total"], report["goodput"], report["arrival"]
    several = len(report["requests"]) > 1
    merged = ", all names merged" if several else ""
    cards = [
        ("Requests", _num(total["count"])),
        ("Failures", _num(total["failures"])),
        ("Success rate", _pct(total["success_rate"])),
        ("Goodput", _pct(goodput["total"]["goodput"]) if goodput else "no SLO set"),
        ("Output tokens/s", _num(total["aggregate_output_tokens_per_s"])),
        (f"TTFT p95{merged}", f"{_num(total['ttft_ms']['p95'], 0)} ms"),
        (f"E2E p95{merged}", f"{_num(total['e2e_ms']['p95'], 0)} ms"),
        ("Est. cost", HTML.usd(report["cost"]["total_usd"])),
    ]
    if arrival:
        cards.append(("Dropped starts", f"{_num(arrival['dropped'])} of {_num(arrival['issued'])}"))
    items = "".join(f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in cards)
    return f'<section class="kpis">{items}</section>' + (_name_kpis(report) if several else "")


def _name_kpis(report: RunReport) -> str:
    """Each name's headline figures: the merged percentiles mix short and long requests (a p95 of all
    names can read lower than one name's p50), so they are never the only ones shown."""
    cards = []
    for name, row in report["requests"].items():
        ttft, e2e = row["ttft_ms"], row["e2e_ms"]
        figures = (
            f"{_num(row['count'])} requests · TTFT p50 {_num(ttft['p50'], 0)} / p95 {_num(ttft['p95'], 0)} ms"
            f" · E2E p50 {_num(e2e['p50'], 0)} / p95 {_num(e2e['p95'], 0)} ms"
            f" · {_num(row['aggregate_output_tokens_per_s'])} output tokens/s"
        )
        cards.append(f'<div class="kpi"><b>{escape(name)}</b><span>{escape(figures)}</span></div>')
    note = (
        '<p class="muted">"All names merged" pools every request name\'s samples into one distribution; '
        "per name:</p>"
    )
    return f'{note}<section class="kpis names">{"".join(cards)}</section>'


def _thresholds(report: RunReport) -> str:
    results = report["thresholds"]
    if not results:
        return ""
    rows = [
        [
            escape(r["threshold"]),
            _num(r["measured"], 3) if r["measured"] is not None else escape(r["error"] or HTML.missing),
            "PASS" if r["passed"] else "FAIL",
        ]
        for r in results
    ]
    rendered = tables.table(("Threshold", "Measured", "Result"), rows)
    for verdict in ("PASS", "FAIL"):
        cell = f'<td data-label="Result">{verdict}</td>'
        rendered = rendered.replace(cell, cell.replace("<td", f'<td class="{verdict.lower()}"', 1))
    return f"<section><h2>Thresholds</h2>{rendered}</section>"


def _config(meta: ReportMeta) -> str:
    config = meta.get("config")
    if not config:
        return ""
    rows = [[escape(setting), escape(value)] for setting, value in config.items()]
    rendered = tables.table(("Setting", "Value"), rows, text=True)
    return f"<section><h2>Run configuration</h2>{rendered}</section>"


def _definitions() -> str:
    items = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in _DEFINITIONS)
    return f'<section><h2>Definitions</h2><dl class="defs">{items}</dl></section>'


def _token_notes(report: RunReport) -> str:
    """Estimated token figures and unknown prompt tokens are said, never passed off as measured."""
    notes = token_notes(report["total"])
    if not notes:
        return ""
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return f'<section class="notes"><h2>Token counts</h2><ul>{items}</ul></section>'


_SECTIONS: tuple[Callable[[RunReport], str], ...] = (
    _verdict, client_lag.html_section, _kpis, _thresholds, _token_notes, tables.phases,
    charts.concurrency_charts, charts.time_charts,
    tables.requests, tables.percentiles, tables.failures, tables.arrival, tables.cost, workload.html_section,
)  # fmt: skip


def render_html(report: RunReport, meta: ReportMeta) -> str:
    """The whole page as one string."""
    css = files("locust_aiapi.render").joinpath("report.css").read_text(encoding="utf-8")
    body = "".join(section(report) for section in _SECTIONS)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>LLM load test report</title><style>{css}</style></head><body><main>"
        f"{_header(report, meta)}{body}{_config(meta)}{_definitions()}"
        "<footer>locust-aiapi · self-contained report (no scripts, no network)</footer>"
        "</main></body></html>\n"
    )
