"""The HTML report's tables: per-name requests and goodput, latency percentiles, phases, open model, cost.

Each is a list of columns (title, cell function) applied to rows of the JSON summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["arrival", "cost", "failures", "num", "pct", "percentiles", "phases", "requests", "table"]

_METRICS = (
    ("ttft_ms", "Time to first token (ms)"),
    ("ttfc_ms", "Time to first content (ms)"),
    ("itl_ms", "Inter-token latency (ms)"),
    ("tpot_ms", "Time per output token (ms)"),
    ("e2e_ms", "End-to-end latency (ms)"),
)
_STATS = ("count", "mean", "p50", "p90", "p95", "p99", "max")


def num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1e5:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def pct(ratio: float | None) -> str:
    return "–" if ratio is None else f"{100.0 * ratio:.1f} %"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f'<tr class="{classes[i] if i < len(classes) else ""}">{"".join(f"<td>{c}</td>" for c in row)}</tr>'
        for i, row in enumerate(rows)
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _rows_with_total(report: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    rows = list(report["requests"].items())
    return [*rows, ("All requests", report["total"])] if len(rows) != 1 else rows


def percentiles(report: Mapping[str, Any]) -> str:
    parts = ["<section><h2>Latency percentiles (successful requests)</h2>"]
    rows = _rows_with_total(report)
    for metric, title in _METRICS:
        cells = [
            [escape(name), *(num(row[metric][s], 0 if s == "count" else 1) for s in _STATS)]
            for name, row in rows
        ]
        classes = ["total" if name == "All requests" else "" for name, _ in rows]
        parts.append(f"<h3>{escape(title)}</h3>{table(('Name', *_STATS), cells, classes)}")
    return "".join(parts) + "</section>"


_Cell = Callable[[Mapping[str, Any]], str]
_Columns = Sequence[tuple[str, _Cell]]


def _count(key: str) -> _Cell:
    return lambda row: "–" if row.get(key) is None else f"{row[key]:,}"


def _ms(metric: str, stat: str) -> _Cell:
    return lambda row: num(row[metric][stat], 0)


def _ratio(key: str) -> _Cell:
    return lambda row: pct(row.get(key))


def _value(key: str, digits: int = 1) -> _Cell:
    return lambda row: num(row.get(key), digits)


def _text(key: str) -> _Cell:
    return lambda row: escape(str(row[key]))


def _columnstable(columns: _Columns, rows: Sequence[Mapping[str, Any]], classes: Sequence[str] = ()) -> str:
    cells = [[cell(row) for _, cell in columns] for row in rows]
    return table([title for title, _ in columns], cells, classes)


_REQUEST_COLUMNS: _Columns = (
    ("Name", _text("name")),
    ("Requests", _count("count")),
    ("Failures", _count("failures")),
    ("Cancelled", _count("cancelled")),
    ("Success", _ratio("success_rate")),
    ("Goodput", _ratio("goodput")),
    ("Good req/s", _value("good_per_s", 2)),
    ("Tokens", _count("total_tokens")),
    ("Out tok/s", _value("aggregate_output_tokens_per_s")),
)


def requests(report: Mapping[str, Any]) -> str:
    goodput = report.get("goodput") or {}
    good_rows = {**goodput.get("requests", {}), "All requests": goodput.get("total")}
    rows = [{**row, **(good_rows.get(name) or {}), "name": name} for name, row in _rows_with_total(report)]
    table = _columnstable(_REQUEST_COLUMNS, rows)
    return f"<section><h2>Requests, goodput and throughput</h2>{table}{_slo_line(goodput)}</section>"


def _slo_line(goodput: Mapping[str, Any]) -> str:
    slo = goodput.get("slo")
    if not slo:
        options = "--ai-slo-ttft-ms, --ai-slo-itl-ms, --ai-slo-e2e-ms"
        return f'<p class="muted">No per-request SLO set ({options}).</p>'
    limits = ", ".join(f"{escape(name)} ≤ {num(limit, 0)}" for name, limit in slo.items())
    return f'<p class="muted">SLO per request: {limits}.</p>'


_PHASE_COLUMNS: _Columns = (
    ("Phase", _text("label")),
    ("Users", _count("target_users")),
    ("Duration s", _value("duration_s", 0)),
    ("Requests", _count("count")),
    ("Success", _count("successes")),
    ("Failures", _count("failures")),
    ("Success rate", _ratio("success_rate")),
    ("E2E mean", _ms("e2e_ms", "mean")),
    ("E2E median", _ms("e2e_ms", "p50")),
    ("E2E p95", _ms("e2e_ms", "p95")),
    ("E2E p99", _ms("e2e_ms", "p99")),
    ("TTFT p50", _ms("ttft_ms", "p50")),
    ("TTFT p95", _ms("ttft_ms", "p95")),
    ("TTFT p99", _ms("ttft_ms", "p99")),
    ("Tokens", _count("total_tokens")),
    ("Out tok/s", _value("aggregate_output_tokens_per_s")),
)


def phases(report: Mapping[str, Any]) -> str:
    phases = report.get("phases") or []
    if not phases:
        return ""
    note = '<p class="muted">Requests count in the phase they started in; times in ms.</p>'
    return f"<section><h2>Per phase</h2>{_columnstable(_PHASE_COLUMNS, phases)}{note}</section>"


def failures(report: Mapping[str, Any]) -> str:
    rows = [
        [escape(name), escape(kind), f"{count:,}"]
        for name, row in report["requests"].items()
        for kind, count in sorted(row["failures_by_kind"].items(), key=lambda item: -item[1])
    ]
    if not rows:
        return ""
    return f"<section><h2>Failures by kind</h2>{table(('Name', 'Kind', 'Count'), rows)}</section>"


_ARRIVAL_COLUMNS: _Columns = (
    ("Rate/s", _value("rate_per_s", 2)),
    ("Arrivals", lambda row: "Poisson" if row.get("poisson") else "fixed"),
    ("Due", _count("issued")),
    ("Started", _count("started")),
    ("Dropped", _count("dropped")),
    ("Dropped %", _ratio("dropped_rate")),
    ("Delay p50", lambda row: num(row["start_delay_ms"]["p50"])),
    ("p95", lambda row: num(row["start_delay_ms"]["p95"])),
    ("max", lambda row: num(row["start_delay_ms"]["max"])),
)


def arrival(report: Mapping[str, Any]) -> str:
    arrival = report.get("arrival")
    if not arrival:
        return ""
    note = "Latencies are measured from each intended start; delay = how late a start ran (ms)."
    return (
        f"<section><h2>Open model</h2>{_columnstable(_ARRIVAL_COLUMNS, [arrival])}"
        f'<p class="muted">{note}</p></section>'
    )


_COST_COLUMNS: _Columns = (
    ("Model", _text("model")),
    ("Input tokens", _count("prompt_tokens")),
    ("Output tokens", _count("output_tokens")),
    ("$/MTok in", _value("input_usd_per_mtok", 2)),
    ("$/MTok out", _value("output_usd_per_mtok", 2)),
    ("Estimated cost", lambda row: "unpriced" if row["cost_usd"] is None else f"${row['cost_usd']:.4f}"),
)


def cost(report: Mapping[str, Any]) -> str:
    cost = report.get("cost") or {}
    if not cost.get("models"):
        return ""
    rows = [{**row, "model": model} for model, row in cost["models"].items()]
    total = "–" if cost["total_usd"] is None else f"${cost['total_usd']:.4f}"
    note = f'<p class="muted">Total {total}. Prices: {escape(str(cost["pricing"]))}.</p>'
    return f"<section><h2>Estimated cost</h2>{_columnstable(_COST_COLUMNS, rows)}{note}</section>"
