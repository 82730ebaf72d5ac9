"""The HTML run report: one self-contained page (inline CSS and SVG, no script, opens offline).

Built only from the JSON summary (``report``) and a few facts about the run (``meta``), so what the
page shows is exactly what CI reads from ``--ai-summary-json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from importlib.resources import files
from typing import Any

from . import _report_tables as tables
from ._charts import Series, bar_chart, line_chart
from ._report_tables import num, pct, table

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


def _header(report: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    facts = " · ".join(escape(f"{key}: {value}") for key, value in meta.items() if value not in (None, ""))
    return (
        f'<header><h1>LLM load test report</h1><p class="meta">{facts}</p>'
        f'<p class="meta">Generated {escape(str(report.get("generated_at", "")))}</p></header>'
    )


def _verdict(report: Mapping[str, Any]) -> str:
    results = report.get("thresholds") or []
    if not results:
        return '<p class="verdict none">No thresholds set (--ai-threshold)</p>'
    failed = sum(1 for r in results if not r["passed"])
    if failed:
        return f'<p class="verdict fail">Thresholds FAILED: {failed} of {len(results)}</p>'
    return f'<p class="verdict pass">Thresholds passed: all {len(results)}</p>'


def _kpis(report: Mapping[str, Any]) -> str:
    total, goodput, cost = report["total"], report.get("goodput"), report.get("cost") or {}
    arrival = report.get("arrival")
    cards = [
        ("Requests", f"{total['count']:,}"),
        ("Failures", f"{total['failures']:,}"),
        ("Success rate", pct(total["success_rate"])),
        ("Goodput", pct(goodput["total"]["goodput"]) if goodput else "no SLO set"),
        ("Output tokens/s", num(total["aggregate_output_tokens_per_s"])),
        ("TTFT p95", f"{num(total['ttft_ms']['p95'], 0)} ms"),
        ("E2E p95", f"{num(total['e2e_ms']['p95'], 0)} ms"),
        ("Est. cost", "–" if cost.get("total_usd") is None else f"${cost['total_usd']:.4f}"),
    ]
    if arrival:
        cards.append(("Dropped starts", f"{arrival['dropped']:,} of {arrival['issued']:,}"))
    items = "".join(f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in cards)
    return f'<section class="kpis">{items}</section>'


def _thresholds(report: Mapping[str, Any]) -> str:
    results = report.get("thresholds") or []
    if not results:
        return ""
    rows = [
        [
            escape(str(r["threshold"])),
            num(r["measured"], 3) if r["measured"] is not None else escape(str(r.get("error") or "–")),
            "PASS" if r["passed"] else "FAIL",
        ]
        for r in results
    ]
    rendered = table(("Threshold", "Measured", "Result"), rows)
    for verdict in ("PASS", "FAIL"):
        rendered = rendered.replace(f"<td>{verdict}</td>", f'<td class="{verdict.lower()}">{verdict}</td>')
    return f"<section><h2>Thresholds</h2>{rendered}</section>"


def _charts(report: Mapping[str, Any]) -> str:
    series = report.get("timeseries") or {}
    points = series.get("points") or []
    if not points:
        return ""
    xs = [p["offset_s"] for p in points]

    def col(key: str) -> list[float | None]:
        return [p[key] for p in points]

    kinds = sorted({kind for p in points for kind in p["failures_by_kind"]})
    figures = [
        line_chart("TTFT (ms)", xs, [Series("p50", col("ttft_p50_ms")), Series("p95", col("ttft_p95_ms"))]),
        line_chart("Output tokens/s", xs, [Series("output tokens/s", col("output_tokens_per_s"))]),
        line_chart("Requests/s (completed)", xs, [Series("requests/s", col("rps"))]),
        line_chart("Users", xs, [Series("users", col("users"))]),
        bar_chart(
            "Failures by kind",
            xs,
            [Series(kind, [float(p["failures_by_kind"].get(kind, 0)) for p in points]) for kind in kinds],
        ),
    ]
    width = num(series.get("interval_s"), 0)
    return (
        f'<section><h2>Over time</h2><p class="muted">Per {width} s bucket, by request end time.</p>'
        f'<div class="charts">{"".join(figures)}</div></section>'
    )


def _definitions() -> str:
    items = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in _DEFINITIONS)
    return f'<section><h2>Definitions</h2><dl class="defs">{items}</dl></section>'


_SECTIONS: tuple[Callable[[Mapping[str, Any]], str], ...] = (
    _verdict, _kpis, _thresholds, tables.phases, _charts, tables.requests, tables.percentiles,
    tables.failures, tables.arrival, tables.cost,
)  # fmt: skip


def render_html(report: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """The whole page as one string."""
    css = files("locust_aiapi").joinpath("_report.css").read_text(encoding="utf-8")
    body = "".join(section(report) for section in _SECTIONS)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>LLM load test report</title><style>{css}</style></head><body><main>"
        f"{_header(report, meta)}{body}{_definitions()}"
        "<footer>locust-aiapi · self-contained report (no scripts, no network)</footer>"
        "</main></body></html>\n"
    )
