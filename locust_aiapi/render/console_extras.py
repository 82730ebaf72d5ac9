"""Console text after the summary table: goodput, the open model, the cost estimate and the per-phase
table. Built from the report alone; prose is wrapped to the terminal's width, and the per-phase table
is split in two stacked tables below :data:`~.text.WIDE` columns."""

from __future__ import annotations

from collections.abc import Sequence

from .._report_types import (
    ArrivalReport,
    CostReport,
    GoodputReport,
    LatencyMetric,
    NameRow,
    PhaseRow,
    RunReport,
    Statistic,
)
from . import client_lag, workload
from .format import CONSOLE, Column
from .text import WIDE, group_line, layouts, text_table, wrap

__all__ = ["render_extras"]

_PHASE_WIDTH = 20
_num, _pct = CONSOLE.number, CONSOLE.percent


def _prose(value: float | None, digits: int = 1) -> str:
    return CONSOLE.number(value, digits, trim=True)


def _ms(metric: LatencyMetric, stat: Statistic, group: str) -> Column[PhaseRow]:
    return Column(stat, lambda row: _num(row[metric][stat], 0), 6, group)


_PHASE_COUNTS: tuple[Column[PhaseRow], ...] = (
    Column("Users", lambda row: _num(row["target_users"]), 5),
    Column("Secs", lambda row: _num(row["duration_s"], 0), 5),
    Column("Reqs", lambda row: _num(row["count"]), 6),
    Column("Fails", lambda row: _num(row["failures"]), 5),
    Column("Succ%", lambda row: _pct(row["success_rate"], sign=False), 5),
    Column("Tokens", lambda row: _num(row["total_tokens"]), 7),
    Column("Out tok/s", lambda row: _num(row["aggregate_output_tokens_per_s"]), 9),
)
_PHASE_TIMES: tuple[Column[PhaseRow], ...] = (
    _ms("e2e_ms", "mean", "E2E"),
    _ms("e2e_ms", "p50", "E2E"),
    _ms("e2e_ms", "p95", "E2E"),
    _ms("e2e_ms", "p99", "E2E"),
    _ms("ttft_ms", "p50", "TTFT"),
    _ms("ttft_ms", "p95", "TTFT"),
    _ms("ttft_ms", "p99", "TTFT"),
)  # with the counts: 118 characters


def _phase_table(phases: Sequence[PhaseRow], width: int) -> list[str]:
    rows = [(row["label"], row) for row in phases]
    lines = wrap("Per phase (requests by the phase they started in; times in ms)", width)
    for index, columns in enumerate(layouts(width, _PHASE_WIDTH, _PHASE_COUNTS, _PHASE_TIMES)):
        heading = group_line(columns, _PHASE_WIDTH)
        lines += [""] * (index > 0) + ([heading] if heading else [])
        lines += text_table("Phase", _PHASE_WIDTH, columns, rows)
    return lines


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


def _cost_lines(cost: CostReport | None, width: int) -> list[str]:
    """One line when it fits, else the total, one line per model, then where the prices came from."""
    if not cost or not cost["models"]:
        return []
    parts = [
        f"{model} {CONSOLE.usd(row['cost_usd'])}" if row["cost_usd"] is not None else f"{model} unpriced"
        for model, row in cost["models"].items()
    ]
    total = f"Estimated cost: {CONSOLE.usd(cost['total_usd'])}"
    one_line = f"{total} ({'; '.join(parts)}) — {cost['pricing']}"
    if len(one_line) <= width:
        return [one_line]
    return [total, *(f"  {part}" for part in parts), *wrap(f"  prices: {cost['pricing']}", width, "    ")]


def render_extras(report: RunReport, width: int = WIDE) -> str:
    """Goodput, open model, cost and the per-phase table ('' when there is nothing to say)."""
    prose = _goodput_line(report["goodput"], report["total"]) + _arrival_line(report["arrival"])
    lines = [part for text in prose for part in wrap(text, width)]
    lines += client_lag.console_lines(report, width)
    lines += _cost_lines(report["cost"], width)
    if report["phases"]:
        lines += ["", *_phase_table(report["phases"], width)]
    lines += workload.console_lines(report)
    return "\n".join(lines) + "\n" if lines else ""
