"""Console text for the end of a run: the summary table, failures by kind, thresholds, goodput, the open
model, cost and the per-phase table. Built from the report alone (:mod:`locust_aiapi._report_types`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import TypeVar

from .._report_types import (
    ArrivalReport,
    CostReport,
    GoodputReport,
    LatencyMetric,
    NameRow,
    PhaseRow,
    RunReport,
    Statistic,
    SummaryReport,
    ThresholdResult,
)
from . import workload
from .format import CONSOLE, Column, cells

__all__ = ["AGGREGATED", "render_extras", "render_summary", "render_thresholds"]

AGGREGATED = "Aggregated"
"""The label of the row that totals every request name."""

_NAME_WIDTH = 16
_PHASE_WIDTH = 22
_KIND_WIDTH = 18
_TITLE = "AI API requests (times in ms; failed requests are counted but not in latency percentiles)"
_num, _pct = CONSOLE.number, CONSOLE.percent


def _prose(value: float | None, digits: int = 1) -> str:
    """A number in a sentence: whole numbers without decimals (``12/s``, ``≤ 500``)."""
    return CONSOLE.number(value, digits, trim=True)


_Row = TypeVar("_Row")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _line(label: str, label_width: int, texts: Sequence[str], columns: Sequence[Column[_Row]]) -> str:
    padded = (text.rjust(column.width) for text, column in zip(texts, columns, strict=True))
    return " ".join((_fit(label, label_width).ljust(label_width), *padded))


def _text_table(
    title: str, width: int, columns: Sequence[Column[_Row]], rows: Sequence[tuple[str, _Row]]
) -> list[str]:
    """Header, rule and one line per ``(label, row)``: the label left-aligned, the cells right-aligned."""
    header = _line(title, width, [column.title for column in columns], columns)
    texts = cells(columns, (row for _, row in rows))
    return [
        header,
        "-" * len(header),
        *(_line(label, width, t, columns) for (label, _), t in zip(rows, texts, strict=True)),
    ]


def _stat(metric: LatencyMetric, stat: Statistic, group: str) -> Column[NameRow]:
    return Column(stat, lambda row: _num(row[metric][stat]), 6, group)


_COLUMNS: tuple[Column[NameRow], ...] = (
    Column("Reqs", lambda row: _num(row["count"]), 6),
    Column("Fails", lambda row: _num(row["failures"]), 5),
    Column("Canc", lambda row: _num(row["cancelled"]), 5),  # stopped by the end of the test: Reqs adds up
    Column("Succ%", lambda row: _pct(row["success_rate"], sign=False), 5),
    _stat("ttft_ms", "p50", "TTFT"),
    _stat("ttft_ms", "p95", "TTFT"),
    _stat("ttft_ms", "p99", "TTFT"),
    Column("ITL", lambda row: _num(row["itl_ms"]["p50"]), 6, "p50"),
    Column("TPOT", lambda row: _num(row["tpot_ms"]["p50"]), 6, "p50"),
    _stat("e2e_ms", "mean", "E2E"),
    _stat("e2e_ms", "p50", "E2E"),
    _stat("e2e_ms", "p95", "E2E"),
    _stat("e2e_ms", "p99", "E2E"),
    Column("Out tok", lambda row: _num(row["output_tokens"]) + _estimated_mark(row), 7),
    Column("Tok/s", lambda row: _num(row["aggregate_output_tokens_per_s"]), 6),
)


def _group_line() -> str:
    """Headings over neighbouring columns of one group (``TTFT`` over its p50, p95 and p99)."""
    parts = [" " * _NAME_WIDTH]
    for group, columns in groupby(_COLUMNS, key=lambda column: column.group):
        widths = [column.width for column in columns]
        parts.append(group.center(sum(widths) + len(widths) - 1))
    return " ".join(parts).rstrip()


def render_summary(report: SummaryReport) -> str:
    """Per-name rows, the Aggregated row, then failures by kind (when there are any)."""
    rows: dict[str, NameRow] = {**report["requests"]}
    table = _text_table("Name", _NAME_WIDTH, _COLUMNS, list(rows.items()))
    total = _line(AGGREGATED, _NAME_WIDTH, cells(_COLUMNS, [report["total"]])[0], _COLUMNS)
    lines = [_TITLE, _group_line(), *table, table[1], total, *token_notes(report["total"])]
    if len(rows) > 1:
        rows[AGGREGATED] = report["total"]
    return "\n".join(lines + _failure_lines(rows)) + "\n"


def _estimated_mark(row: NameRow) -> str:
    return "~" if row["output_tokens_by_source"].get("counted") else ""


def token_notes(total: NameRow) -> list[str]:
    """Say when token figures are estimated, and when prompt tokens are unknown (never shown as 0)."""
    notes = []
    counted = total["output_tokens_by_source"].get("counted", 0)
    if counted:
        notes.append(
            f"~ output tokens estimated for {counted} of {total['count']} requests: the server sent no "
            "usage, so each token delta of the stream was counted as one token"
        )
    if total["count"] and total["prompt_tokens_unknown"]:
        unknown = total["prompt_tokens_unknown"]
        notes.append(f"prompt tokens unknown for {unknown} of {total['count']} requests (no usage sent)")
    return notes


def _failure_lines(rows: Mapping[str, NameRow]) -> list[str]:
    lines = [
        f"{_fit(name, _NAME_WIDTH):<{_NAME_WIDTH}} {_fit(kind, _KIND_WIDTH):<{_KIND_WIDTH}} {n:>8}"
        for name, row in rows.items()
        for kind, n in sorted(row["failures_by_kind"].items(), key=lambda item: (-item[1], item[0]))
    ]
    if not lines:
        return []
    header = f"{'Name':<{_NAME_WIDTH}} {'Kind':<{_KIND_WIDTH}} {'Count':>8}"
    return ["", "Failures by kind", header, "-" * len(header), *lines]


def render_thresholds(results: Sequence[ThresholdResult]) -> str:
    """``PASS``/``FAIL`` per threshold with the measured value, and the verdict ('' without thresholds)."""
    if not results:
        return ""
    width = max(len(result["threshold"]) for result in results)
    lines = ["Thresholds (locust-aiapi)"]
    for result in results:
        verdict = "PASS" if result["passed"] else "FAIL"
        measured = result["measured"]
        shown = _prose(measured, 3) if measured is not None else result["error"] or CONSOLE.missing
        lines.append(f"  {verdict}  {result['threshold']:<{width}}  measured {shown}")
    failed = sum(1 for result in results if not result["passed"])
    lines.append(f"  {failed} of {len(results)} failed" if failed else f"  all {len(results)} passed")
    return "\n".join(lines) + "\n"


def _ms(metric: LatencyMetric, stat: Statistic, title: str, width: int = 7) -> Column[PhaseRow]:
    return Column(title, lambda row: _num(row[metric][stat], 0), width)


_PHASE_COLUMNS: tuple[Column[PhaseRow], ...] = (
    Column("Users", lambda row: _num(row["target_users"]), 6),
    Column("Secs", lambda row: _num(row["duration_s"], 0), 6),
    Column("Reqs", lambda row: _num(row["count"]), 7),
    Column("OK", lambda row: _num(row["successes"]), 7),
    Column("Fails", lambda row: _num(row["failures"]), 6),
    Column("Succ%", lambda row: _pct(row["success_rate"], sign=False), 6),
    _ms("e2e_ms", "mean", "E2E avg", 8),
    _ms("e2e_ms", "p50", "med"),
    _ms("e2e_ms", "p95", "p95"),
    _ms("e2e_ms", "p99", "p99"),
    _ms("ttft_ms", "p50", "TTFT p50", 8),
    _ms("ttft_ms", "p95", "p95"),
    _ms("ttft_ms", "p99", "p99"),
    Column("Tokens", lambda row: _num(row["total_tokens"]), 9),
    Column("Out tok/s", lambda row: _num(row["aggregate_output_tokens_per_s"]), 9),
)


def _phase_table(phases: Sequence[PhaseRow]) -> list[str]:
    rows = [(row["label"], row) for row in phases]
    return [
        "Per phase (requests by the phase they started in; times in ms)",
        *_text_table("Phase", _PHASE_WIDTH, _PHASE_COLUMNS, rows),
    ]


def _goodput_line(goodput: GoodputReport | None, total: NameRow) -> list[str]:
    if goodput is None:
        return []
    slo = ", ".join(f"{name} ≤ {_prose(limit)}" for name, limit in goodput["slo"].items())
    row = goodput["total"]
    return [
        f"Goodput (SLO: {slo}): {_pct(row['goodput'])} of {row['completed']} completed requests "
        "met every SLO — "
        f"{_prose(row['good_per_s'], 2)} good req/s of {_prose(row['completed_per_s'], 2)} "
        f"req/s; output {_prose(total['aggregate_output_tokens_per_s'])} tokens/s"
    ]


def _arrival_line(arrival: ArrivalReport | None) -> list[str]:
    if arrival is None:
        return []
    delay = arrival["start_delay_ms"]
    kind = "Poisson" if arrival.get("poisson") else "fixed"
    return [
        f"Open model ({kind} rate {_prose(arrival.get('rate_per_s'), 2)}/s): {arrival['issued']} starts due, "
        f"{arrival['started']} started, {arrival['dropped']} dropped ({_pct(arrival['dropped_rate'])}); "
        f"start delay p50 {_prose(delay['p50'])} ms, p95 {_prose(delay['p95'])} ms, "
        f"max {_prose(delay['max'])} ms"
    ]


def _cost_line(cost: CostReport | None) -> list[str]:
    if not cost or not cost["models"]:
        return []
    parts = [
        f"{model} {CONSOLE.usd(row['cost_usd'])}" if row["cost_usd"] is not None else f"{model} unpriced"
        for model, row in cost["models"].items()
    ]
    return [f"Estimated cost: {CONSOLE.usd(cost['total_usd'])} ({'; '.join(parts)}) — {cost['pricing']}"]


def render_extras(report: RunReport) -> str:
    """Goodput, open model, cost and the per-phase table ('' when there is nothing to say)."""
    lines = _goodput_line(report["goodput"], report["total"])
    lines += _arrival_line(report["arrival"])
    lines += _cost_line(report["cost"])
    if report["phases"]:
        lines += ["", *_phase_table(report["phases"])]
    lines += workload.console_lines(report)
    return "\n".join(lines) + "\n" if lines else ""
