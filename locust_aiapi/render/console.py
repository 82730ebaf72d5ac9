"""Console text for the end of a run: the summary table, failures by kind, thresholds, goodput, the open
model, cost and the per-phase table. Built from the report alone (:mod:`locust_aiapi._report_types`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._report_types import (
    LatencyMetric,
    NameRow,
    Statistic,
    SummaryReport,
    ThresholdResult,
)
from .format import CONSOLE, Column, cells
from .text import WIDE, fit, group_line, layouts, line, text_table, wrap

__all__ = ["AGGREGATED", "render_summary", "render_thresholds", "token_notes"]

AGGREGATED = "Aggregated"
"""The label of the row that totals every request name."""

_NAME_WIDTH = 16
_MAX_NAME_WIDTH = 48
_PHASE_WIDTH = 22
_KIND_WIDTH = 18
_TITLE = "AI API requests (times in ms; failed requests are counted but not in latency percentiles)"
_num, _pct = CONSOLE.number, CONSOLE.percent


def _prose(value: float | None, digits: int = 1) -> str:
    """A number in a sentence: whole numbers without decimals (``12/s``, ``≤ 500``)."""
    return CONSOLE.number(value, digits, trim=True)


def _stat(metric: LatencyMetric, stat: Statistic, group: str) -> Column[NameRow]:
    return Column(stat, lambda row: _num(row[metric][stat]), 6, group)


_COUNTS: tuple[Column[NameRow], ...] = (
    Column("Reqs", lambda row: _num(row["count"]), 6),
    Column("Fails", lambda row: _num(row["failures"]), 5),
    Column("Canc", lambda row: _num(row["cancelled"]), 5),  # stopped by the end of the test: Reqs adds up
    Column("Succ%", lambda row: _pct(row["success_rate"], sign=False), 5),
    _stat("ttft_ms", "p50", "TTFT"),
    _stat("ttft_ms", "p95", "TTFT"),
    _stat("ttft_ms", "p99", "TTFT"),
    Column("ITL", lambda row: _num(row["itl_ms"]["p50"]), 6, "p50"),
    Column("TPOT", lambda row: _num(row["tpot_ms"]["p50"]), 6, "p50"),
)
_TIMES: tuple[Column[NameRow], ...] = (
    _stat("e2e_ms", "mean", "E2E"),
    _stat("e2e_ms", "p50", "E2E"),
    _stat("e2e_ms", "p95", "E2E"),
    _stat("e2e_ms", "p99", "E2E"),
    Column("Out tok", lambda row: _num(row["output_tokens"]) + _estimated_mark(row), 7),
    Column("Tok/s", lambda row: _num(row["aggregate_output_tokens_per_s"]), 6),
)


def render_summary(report: SummaryReport, width: int = WIDE) -> str:
    """Per-name rows, the Aggregated row, then failures by kind (when there are any).

    Below ``WIDE`` columns the table is split in two stacked tables (counts and TTFT; E2E and tokens),
    each under 80 columns, with the request names repeated.
    """
    rows: dict[str, NameRow] = {**report["requests"]}
    names = _name_width(rows, width)
    lines = [_TITLE if width >= len(_TITLE) else "AI API requests (times in ms)"]
    for index, columns in enumerate(layouts(width, names, _COUNTS, _TIMES)):
        table = text_table("Name", names, columns, list(rows.items()))
        total = line(AGGREGATED, names, cells(columns, [report["total"]])[0], columns)
        lines += [""] * (index > 0) + [group_line(columns, names), *table, table[1], total]
    lines += token_notes(report["total"], width)
    if len(rows) > 1:
        rows[AGGREGATED] = report["total"]
    return "\n".join(lines + _failure_lines(rows, names)) + "\n"


def _name_width(rows: Mapping[str, NameRow], width: int) -> int:
    """16 columns for names in 120; a wider terminal gives long names what they need (up to 48)."""
    longest = max((len(name) for name in rows), default=0)
    return max(_NAME_WIDTH, min(longest, _NAME_WIDTH + max(0, width - WIDE), _MAX_NAME_WIDTH))


def _estimated_mark(row: NameRow) -> str:
    return "~" if set(row["output_tokens_by_source"]) - {"usage"} else ""


_ESTIMATES = {
    "counted": "the server sent no usage, so each token delta of the stream counted as one token",
    "tokenized": "the server sent no usage, so the text received was counted with the o200k_base tokenizer",
}


def token_notes(total: NameRow, width: int = WIDE) -> list[str]:
    """Say when token figures are estimated, and when prompt tokens are unknown (never shown as 0)."""
    notes = []
    sources = total["output_tokens_by_source"]
    for source, how in _ESTIMATES.items():
        if sources.get(source):
            count = sources[source]
            notes.append(f"~ output tokens estimated for {count} of {total['successes']} answers: {how}")
    if total["successes"] and total["prompt_tokens_unknown"]:
        unknown = total["prompt_tokens_unknown"]
        notes.append(f"prompt tokens unknown for {unknown} of {total['successes']} answers (no usage sent)")
    return [line for note in notes for line in wrap(note, width)]


def _failure_lines(rows: Mapping[str, NameRow], names: int = _NAME_WIDTH) -> list[str]:
    lines = [
        f"{fit(name, names):<{names}} {fit(kind, _KIND_WIDTH):<{_KIND_WIDTH}} {n:>8}"
        for name, row in rows.items()
        for kind, n in sorted(row["failures_by_kind"].items(), key=lambda item: (-item[1], item[0]))
    ]
    if not lines:
        return []
    header = f"{'Name':<{names}} {'Kind':<{_KIND_WIDTH}} {'Count':>8}"
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
        shown = _with_unit(result, measured) if measured is not None else result["error"] or CONSOLE.missing
        lines.append(f"  {verdict}  {result['threshold']:<{width}}  measured {shown}")
    failed = sum(1 for result in results if not result["passed"])
    lines.append(f"  {failed} of {len(results)} failed" if failed else f"  all {len(results)} passed")
    return "\n".join(lines) + "\n"


_RATIOS = frozenset({"error_rate", "success_rate", "goodput", "dropped_rate"})
_UNITS = {"output_tokens_per_s": (" tokens/s", 1), "rps": (" req/s", 2)}


def _with_unit(result: ThresholdResult, measured: float) -> str:
    """``207.5 ms``, ``1,234.5 tokens/s``, ``3.2 req/s``, ``4.1%``; counts bare."""
    metric = result.get("metric", "")
    if metric in _RATIOS:
        return CONSOLE.percent(measured)
    if metric.endswith("_ms"):
        return f"{_prose(measured, 1)} ms"
    unit, digits = _UNITS.get(metric, ("", 3))
    return f"{_prose(measured, digits)}{unit}"
