"""The HTML report's tables: per-name requests and goodput, latency percentiles, phases, open model, cost.

Each is a sequence of :class:`~.format.Column` applied to rows of the report (numbers in the HTML style).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import NamedTuple, TypeVar

from .._report_types import (
    ArrivalReport,
    GoodputReport,
    GoodputRow,
    LatencyMetric,
    ModelCost,
    NameRow,
    PhaseRow,
    RunReport,
    Statistic,
)
from .format import HTML, Column, cells

__all__ = ["ALL_REQUESTS", "arrival", "cost", "failures", "percentiles", "phases", "requests", "table"]

ALL_REQUESTS = "All requests"
"""The label of the row that totals every request name (shown when there is more than one)."""

_METRICS: tuple[tuple[LatencyMetric, str], ...] = (
    ("ttft_ms", "Time to first token (ms)"),
    ("ttfc_ms", "Time to first content (ms)"),
    ("itl_ms", "Inter-token latency (ms)"),
    ("tpot_ms", "Time per output token (ms)"),
    ("e2e_ms", "End-to-end latency (ms)"),
)
_STATS: tuple[Statistic, ...] = ("count", "mean", "p50", "p90", "p95", "p99", "max")
STACK_FROM_COLUMNS = 5
"""Tables of more columns than this become one card per row below 720 px (see ``report.css``)."""
WIDE_FROM_COLUMNS = 9
"""... and tables of more than this below 1100 px."""
_num, _pct = HTML.number, HTML.percent
_Row = TypeVar("_Row")


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = (), text: bool = False
) -> str:
    """A ``<table>`` of already escaped cells; ``classes`` name each row's CSS class; ``text``: cells of
    prose that wrap (not numbers kept on one line)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    labels = [f' data-label="{escape(h)}"' for h in headers]
    body = "".join(
        f'<tr class="{classes[i] if i < len(classes) else ""}">'
        + "".join(f"<td{labels[j] if j < len(labels) else ''}>{c}</td>" for j, c in enumerate(row))
        + "</tr>"
        for i, row in enumerate(rows)
    )
    # a table of many columns is stacked (a card per row) on a narrow screen rather than scrolled
    stacked = ' class="stack"' if len(headers) > STACK_FROM_COLUMNS else ""
    if len(headers) > WIDE_FROM_COLUMNS:
        stacked = ' class="stack wide"'
    if text:
        stacked = ' class="text"'
    table = f"<table{stacked}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _columns_table(columns: Sequence[Column[_Row]], rows: Sequence[_Row], classes: Sequence[str] = ()) -> str:
    return table([column.title for column in columns], cells(columns, rows), classes)


def _rows_with_total(report: RunReport) -> list[tuple[str, NameRow]]:
    rows = list(report["requests"].items())
    return [*rows, (ALL_REQUESTS, report["total"])] if len(rows) != 1 else rows


def _stat_column(metric: LatencyMetric, stat: Statistic) -> Column[tuple[str, NameRow]]:
    return Column(stat, lambda named: _num(named[1][metric][stat], 0 if stat == "count" else 1))


def percentiles(report: RunReport) -> str:
    parts = ["<section><h2>Latency percentiles (successful requests)</h2>"]
    rows = _rows_with_total(report)
    classes = ["total" if name == ALL_REQUESTS else "" for name, _ in rows]
    for metric, title in _METRICS:
        columns: list[Column[tuple[str, NameRow]]] = [Column("Name", _escaped_name)]
        columns += (_stat_column(metric, stat) for stat in _STATS)
        parts.append(f"<h3>{escape(title)}</h3>{_columns_table(columns, rows, classes)}")
    return "".join(parts) + "</section>"


def _escaped_name(named: tuple[str, object]) -> str:
    return escape(named[0])


def _count(value: int | None) -> str:
    return _num(value, 0)


class _RequestLine(NamedTuple):
    name: str
    row: NameRow
    good: GoodputRow | None  # None without an SLO


def _good(
    get: Callable[[GoodputRow], float | None], show: Callable[[float | None], str]
) -> Callable[[_RequestLine], str]:
    return lambda line: show(None if line.good is None else get(line.good))


_REQUEST_COLUMNS: tuple[Column[_RequestLine], ...] = (
    Column("Name", lambda line: escape(line.name)),
    Column("Requests", lambda line: _count(line.row["count"])),
    Column("Failures", lambda line: _count(line.row["failures"])),
    Column("Cancelled", lambda line: _count(line.row["cancelled"])),
    Column("Success", lambda line: _pct(line.row["success_rate"])),
    Column("Goodput", _good(lambda good: good["goodput"], _pct)),
    Column("Good req/s", _good(lambda good: good["good_per_s"], lambda value: _num(value, 2))),
    Column("Tokens", lambda line: _count(line.row["total_tokens"]) + _estimated(line.row)),
    Column("Out tok/s", lambda line: _num(line.row["aggregate_output_tokens_per_s"]) + _estimated(line.row)),
)


def _estimated(row: NameRow) -> str:
    """``~`` when some output tokens of the row were estimated (no usage): see "Token counts"."""
    return "~" if set(row["output_tokens_by_source"]) - {"usage"} else ""


def requests(report: RunReport) -> str:
    goodput = report["goodput"]
    good_rows = {**goodput["requests"], ALL_REQUESTS: goodput["total"]} if goodput else {}
    lines = [_RequestLine(name, row, good_rows.get(name)) for name, row in _rows_with_total(report)]
    rendered = _columns_table(_REQUEST_COLUMNS, lines)
    return f"<section><h2>Requests, goodput and throughput</h2>{rendered}{_slo_line(goodput)}</section>"


def _slo_line(goodput: GoodputReport | None) -> str:
    if not goodput or not goodput["slo"]:
        options = "--ai-slo-ttft-ms, --ai-slo-itl-ms, --ai-slo-e2e-ms"
        return f'<p class="muted">No per-request SLO set ({options}).</p>'
    limits = ", ".join(f"{escape(name)} ≤ {_num(limit, 0)}" for name, limit in goodput["slo"].items())
    return f'<p class="muted">SLO per request: {limits}.</p>'


def _ms(metric: LatencyMetric, stat: Statistic, title: str) -> Column[PhaseRow]:
    return Column(title, lambda row: _num(row[metric][stat], 0))


_PHASE_COLUMNS: tuple[Column[PhaseRow], ...] = (
    Column("Phase", lambda row: escape(row["label"])),
    Column("Users", lambda row: _count(row["target_users"])),
    Column("Duration s", lambda row: _num(row["duration_s"], 0)),
    Column("Requests", lambda row: _count(row["count"])),
    Column("Success", lambda row: _count(row["successes"])),
    Column("Failures", lambda row: _count(row["failures"])),
    Column("Success rate", lambda row: _pct(row["success_rate"])),
    _ms("e2e_ms", "mean", "E2E mean"),
    _ms("e2e_ms", "p50", "E2E median"),
    _ms("e2e_ms", "p95", "E2E p95"),
    _ms("e2e_ms", "p99", "E2E p99"),
    _ms("ttft_ms", "p50", "TTFT p50"),
    _ms("ttft_ms", "p95", "TTFT p95"),
    _ms("ttft_ms", "p99", "TTFT p99"),
    Column("Tokens", lambda row: _count(row["total_tokens"])),
    Column("Out tok/s", lambda row: _num(row["aggregate_output_tokens_per_s"])),
)


def phases(report: RunReport) -> str:
    if not report["phases"]:
        return ""
    note = '<p class="muted">Requests count in the phase they started in; times in ms.</p>'
    return f"<section><h2>Per phase</h2>{_columns_table(_PHASE_COLUMNS, report['phases'])}{note}</section>"


def failures(report: RunReport) -> str:
    rows = [
        [escape(name), escape(kind), _count(count), *_failure_detail(row, kind)]
        for name, row in report["requests"].items()
        for kind, count in sorted(row["failures_by_kind"].items(), key=lambda item: -item[1])
    ]
    if not rows:
        return ""
    headers = ("Name", "Kind", "Count", "Status codes", "Most frequent messages")
    note = '<p class="muted">Status "none": no HTTP status (a timeout, a cut stream); secrets redacted.</p>'
    return f"<section><h2>Failures by kind</h2>{table(headers, rows, text=True)}{note}</section>"


def _failure_detail(row: NameRow, kind: str) -> tuple[str, str]:
    detail = row.get("failure_details", {}).get(kind)
    if detail is None:
        return HTML.missing, HTML.missing
    codes = ", ".join(f"{escape(code)} × {_count(n)}" for code, n in detail["status_codes"].items())
    messages = [f"{_count(m['count'])} × {escape(m['message'])}" for m in detail["messages"]]
    if detail["other_messages"]:
        messages.append(f"{_count(detail['other_messages'])} × other messages")
    return codes or HTML.missing, "<br>".join(messages) or HTML.missing


_ARRIVAL_COLUMNS: tuple[Column[ArrivalReport], ...] = (
    Column("Rate/s", lambda row: _num(row.get("rate_per_s"), 2)),
    Column("Arrivals", lambda row: "Poisson" if row.get("poisson") else "fixed"),
    Column("Due", lambda row: _count(row["issued"])),
    Column("Started", lambda row: _count(row["started"])),
    Column("Dropped", lambda row: _count(row["dropped"])),
    Column("Dropped %", lambda row: _pct(row["dropped_rate"])),
    Column("Delay p50", lambda row: _num(row["start_delay_ms"]["p50"])),
    Column("p95", lambda row: _num(row["start_delay_ms"]["p95"])),
    Column("max", lambda row: _num(row["start_delay_ms"]["max"])),
)


def arrival(report: RunReport) -> str:
    if not report["arrival"]:
        return ""
    note = "Latencies are measured from each intended start; delay = how late a start ran (ms)."
    return (
        f"<section><h2>Open model</h2>{_columns_table(_ARRIVAL_COLUMNS, [report['arrival']])}"
        f'<p class="muted">{note}</p></section>'
    )


def _writes(row: ModelCost) -> str:
    """The cache writes, and of them the 1-hour ones when there were any (Anthropic bills those higher)."""
    hour = row["cache_write_1h_prompt_tokens"]
    written = _count(row["cache_write_prompt_tokens"])
    return f"{written} ({_count(hour)} for 1 h)" if hour else written


def _write_prices(row: ModelCost) -> str:
    price = _num(row["cache_write_input_usd_per_mtok"], 3)
    if row["cache_write_1h_prompt_tokens"] and row["cache_write_1h_input_usd_per_mtok"] is not None:
        return f"{price} ({_num(row['cache_write_1h_input_usd_per_mtok'], 3)} for 1 h)"
    return price


_COST_COLUMNS: tuple[Column[tuple[str, ModelCost]], ...] = (
    Column("Model", _escaped_name),
    Column("Input tokens", lambda named: _count(named[1]["prompt_tokens"])),
    Column("of them cached", lambda named: _count(named[1]["cached_prompt_tokens"])),
    Column("of them cache writes", lambda named: _writes(named[1])),
    Column("Output tokens", lambda named: _count(named[1]["output_tokens"])),
    Column("$/MTok in", lambda named: _num(named[1]["input_usd_per_mtok"], 2)),
    Column("$/MTok cached in", lambda named: _num(named[1]["cached_input_usd_per_mtok"], 3)),
    Column("$/MTok cache write", lambda named: _write_prices(named[1])),
    Column("$/MTok out", lambda named: _num(named[1]["output_usd_per_mtok"], 2)),
    Column(
        "Estimated cost",
        lambda named: "unpriced" if named[1]["cost_usd"] is None else HTML.usd(named[1]["cost_usd"]),
    ),
)


def cost(report: RunReport) -> str:
    cost = report["cost"]
    if not cost["models"]:
        return ""
    rows = list(cost["models"].items())
    note = f'<p class="muted">Total {HTML.usd(cost["total_usd"])}. Prices: {escape(cost["pricing"])}.</p>'
    return f"<section><h2>Estimated cost</h2>{_columns_table(_COST_COLUMNS, rows)}{note}</section>"
