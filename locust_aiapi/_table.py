"""The console table printed at the end of a run, from :meth:`LLMSummary.report_dict` rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import groupby
from typing import Any

__all__ = ["AGGREGATED", "render_table"]

AGGREGATED = "Aggregated"


def render_table(report: Mapping[str, Any]) -> str:
    """Per-name rows, the Aggregated row, then failures by kind (when there are any)."""
    rows: dict[str, Mapping[str, Any]] = {**report["requests"]}
    lines = [_TITLE, _group_line(), _row_line("Name", (title for _, title, _, _ in _COLUMNS)), _RULE]
    lines += [_row_line(name, _cells(row)) for name, row in rows.items()]
    lines += [_RULE, _row_line(AGGREGATED, _cells(report["total"]))]
    if len(rows) > 1:
        rows[AGGREGATED] = report["total"]
    return "\n".join(lines + _failure_lines(rows)) + "\n"


_NAME_WIDTH = 20
_KIND_WIDTH = 18
_TITLE = "AI API requests (times in ms; failed requests are counted but not in latency percentiles)"
_Cell = Callable[[Mapping[str, Any]], str]


def _fit(name: str, width: int = _NAME_WIDTH) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _fmt_count(n: int) -> str:
    if n < 1_000_000:
        return str(n)
    return f"{n / 1e6:.1f}M" if n < 1_000_000_000 else f"{n / 1e9:.1f}G"


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1000.0:
        return f"{value:.1f}"
    return f"{value:.0f}" if value < 1e6 else f"{value / 1e6:.1f}M"


def _fmt_rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 1e5 else f"{value / 1e6:.2f}M"


def _fmt_percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100.0 * ratio:.1f}"


def _stat(metric: str, stat: str) -> _Cell:
    return lambda row: _fmt_ms(row[metric][stat])


# (group heading, column title, width, cell); equal neighbouring groups share one heading
_COLUMNS: tuple[tuple[str, str, int, _Cell], ...] = (
    ("", "Reqs", 6, lambda row: _fmt_count(row["count"])),
    ("", "Fails", 6, lambda row: _fmt_count(row["failures"])),
    ("", "Succ%", 6, lambda row: _fmt_percent(row["success_rate"])),
    ("TTFT", "p50", 6, _stat("ttft_ms", "p50")),
    ("TTFT", "p95", 6, _stat("ttft_ms", "p95")),
    ("TTFT", "p99", 6, _stat("ttft_ms", "p99")),
    ("p50", "ITL", 6, _stat("itl_ms", "p50")),
    ("p50", "TPOT", 6, _stat("tpot_ms", "p50")),
    ("E2E", "mean", 6, _stat("e2e_ms", "mean")),
    ("E2E", "p50", 6, _stat("e2e_ms", "p50")),
    ("E2E", "p95", 6, _stat("e2e_ms", "p95")),
    ("E2E", "p99", 6, _stat("e2e_ms", "p99")),
    ("", "Out tok", 7, lambda row: _fmt_count(row["output_tokens"])),
    ("", "Tok/s", 7, lambda row: _fmt_rate(row["aggregate_output_tokens_per_s"])),
)
_RULE = "-" * (_NAME_WIDTH + sum(width + 1 for _, _, width, _ in _COLUMNS))


def _cells(row: Mapping[str, Any]) -> list[str]:
    return [cell(row) for _, _, _, cell in _COLUMNS]


def _row_line(name: str, cells: Iterable[str]) -> str:
    padded = (text.rjust(width) for text, (_, _, width, _) in zip(cells, _COLUMNS, strict=True))
    return " ".join((_fit(name).ljust(_NAME_WIDTH), *padded))


def _group_line() -> str:
    parts = [" " * _NAME_WIDTH]
    for group, columns in groupby(_COLUMNS, key=lambda column: column[0]):
        widths = [width for _, _, width, _ in columns]
        parts.append(group.center(sum(widths) + len(widths) - 1))
    return " ".join(parts).rstrip()


def _failure_lines(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        f"{_fit(name):<{_NAME_WIDTH}} {_fit(kind, _KIND_WIDTH):<{_KIND_WIDTH}} {n:>8}"
        for name, row in rows.items()
        for kind, n in sorted(row["failures_by_kind"].items(), key=lambda item: (-item[1], item[0]))
    ]
    if not lines:
        return []
    header = f"{'Name':<{_NAME_WIDTH}} {'Kind':<{_KIND_WIDTH}} {'Count':>8}"
    return ["", "Failures by kind", header, "-" * len(header), *lines]
