"""The workload's part of the report: TTFT / E2E / prompt tokens by conversation turn, requested against
reported tokens, and the one warning about answers much shorter than asked. Console text and HTML."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .._report_types import RequestedTokensReport, RunReport, TurnRow, WorkloadReport
from .format import CONSOLE, HTML, Column, Style, cells
from .html_tables import table as html_table

__all__ = ["console_lines", "html_section"]

_TURN_WIDTH = 6


def _mean_prompt_tokens(row: TurnRow) -> float | None:
    reported = row["count"] - row["prompt_tokens_unknown"]
    return (row["prompt_tokens"] or 0) / reported if reported else None


def _columns(style: Style) -> tuple[Column[TurnRow], ...]:
    def ms(metric: str, stat: str, title: str) -> Column[TurnRow]:
        return Column(title, lambda row: style.number(row[metric][stat], 0), 8)

    return (
        Column("Reqs", lambda row: style.number(row["count"]), 7),
        Column("Fails", lambda row: style.number(row["failures"]), 6),
        Column("Prompt tok avg", lambda row: style.number(_mean_prompt_tokens(row), 0), 14),
        ms("ttft_ms", "p50", "TTFT p50"),
        ms("ttft_ms", "p95", "TTFT p95"),
        ms("e2e_ms", "p50", "E2E p50"),
        ms("e2e_ms", "p95", "E2E p95"),
    )


def _requested_line(requested: RequestedTokensReport) -> list[str]:
    lines = []
    if requested["prompt_requests"]:
        n = requested["prompt_requests"]
        lines.append(
            f"Prompt tokens: {requested['requested_prompt_tokens'] / n:.0f} requested, "
            f"{requested['reported_prompt_tokens'] / n:.0f} reported by the server (mean of {n} requests; "
            "the difference is the chat template, or the words-per-token estimate)"
        )
    if requested["short_answer_warning"]:
        lines.append(f"WARNING: {requested['short_answer_warning']}")
    return lines


def console_lines(report: RunReport) -> list[str]:
    """Lines for the console's extras ([] when the run had no workload facts)."""
    workload: WorkloadReport | None = report.get("workload")
    if not workload:
        return []
    lines = _requested_line(workload["requested"])
    rows: Sequence[TurnRow] = workload["turns"]
    if rows:
        columns = _columns(CONSOLE)
        header = "Turn".ljust(_TURN_WIDTH) + " " + " ".join(c.title.rjust(c.width) for c in columns)
        body = [
            str(row["turn"]).ljust(_TURN_WIDTH)
            + " "
            + " ".join(t.rjust(c.width) for t, c in zip(texts, columns, strict=True))
            for row, texts in zip(rows, cells(columns, rows), strict=True)
        ]
        lines += ["", "By conversation turn (times in ms)", header, "-" * len(header), *body]
    return lines


def html_section(report: RunReport) -> str:
    workload: WorkloadReport | None = report.get("workload")
    if not workload or not (workload["turns"] or _requested_line(workload["requested"])):
        return ""
    notes = "".join(f"<p>{escape(line)}</p>" for line in _requested_line(workload["requested"]))
    table = ""
    if workload["turns"]:
        columns = (Column("Turn", lambda row: str(row["turn"])), *_columns(HTML))
        table = html_table([c.title for c in columns], cells(columns, workload["turns"]))
    return f"<section><h2>Workload and conversation turns</h2>{notes}{table}</section>"
