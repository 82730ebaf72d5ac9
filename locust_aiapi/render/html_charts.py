"""The HTML report's charts: over time (all requests and per request name), and against concurrency.

A sweep or stages run is read against concurrency: one point per phase, at the phase's target users,
so throughput and latency per step sit on one axis. The time charts put every request in the bucket
it ended in; a bucket at an edge of the run counts rates per second it covered (``covered_s``), so the
last, partial bucket shows no false drop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from .._report_types import PhaseRow, RunReport, TimeSeriesFigures, TimeSeriesPoint
from .charts import Series, bar_chart, line_chart
from .format import HTML

__all__ = ["MAX_NAME_LINES", "concurrency_charts", "time_charts"]

MAX_NAME_LINES = 7
"""Per-name lines drawn in one chart (besides "all"): the chart has eight colours."""

_Get = Callable[[TimeSeriesFigures], float | None]


def _users(value: float) -> str:
    return f"{value:g}"


def _phase_rate(row: PhaseRow) -> float | None:
    completed = row["count"] - row["cancelled"]
    return completed / row["duration_s"] if row["duration_s"] > 0.0 else None


def concurrency_charts(report: RunReport) -> str:
    """Throughput, TTFT and ITL per phase against its target users (two phases at least)."""
    rows = sorted(report["phases"], key=lambda row: (row["target_users"], row["index"]))
    if len(rows) < 2:
        return ""
    xs = [float(row["target_users"]) for row in rows]

    def line(title: str, series: Sequence[tuple[str, Callable[[PhaseRow], float | None]]]) -> str:
        lines = [Series(label, [get(row) for row in rows]) for label, get in series]
        return line_chart(title, xs, lines, x_format=_users)

    figures = [
        line("Requests/s vs users", [("requests/s", _phase_rate)]),
        line("Output tokens/s vs users", [("output tokens/s", lambda r: r["aggregate_output_tokens_per_s"])]),
        line(
            "TTFT (ms) vs users",
            [("p50", lambda r: r["ttft_ms"]["p50"]), ("p95", lambda r: r["ttft_ms"]["p95"])],
        ),
        line(
            "ITL (ms) vs users",
            [("p50", lambda r: r["itl_ms"]["p50"]), ("p95", lambda r: r["itl_ms"]["p95"])],
        ),
    ]
    note = (
        "One point per phase at its target users; requests count in the phase they started in, "
        "requests/s = completed requests / phase duration."
    )
    return (
        f'<section><h2>Against concurrency</h2><p class="muted">{note}</p>'
        f'<div class="charts">{"".join(figures)}</div></section>'
    )


def _names(points: Sequence[TimeSeriesPoint]) -> list[str]:
    """The names with most requests, at most ``MAX_NAME_LINES``; none when there is only one."""
    totals: dict[str, int] = {}
    for point in points:
        for name, figures in point["by_name"].items():
            totals[name] = totals.get(name, 0) + figures["requests"]
    if len(totals) < 2:
        return []
    return sorted(totals, key=lambda name: (-totals[name], name))[:MAX_NAME_LINES]


def _by_name(points: Sequence[TimeSeriesPoint], names: Sequence[str], get: _Get) -> list[Series]:
    return [
        Series(name, [get(p["by_name"][name]) if name in p["by_name"] else None for p in points])
        for name in names
    ]


def time_charts(report: RunReport) -> str:
    series = report["timeseries"]
    points = series["points"]
    if not points:
        return ""
    xs = [p["offset_s"] for p in points]
    names = _names(points)

    def line(title: str, lines: Sequence[tuple[str, _Get]], per_name: _Get | None = None) -> str:
        drawn = [Series(label, [get(p) for p in points]) for label, get in lines]
        if per_name is not None:
            drawn += _by_name(points, names, per_name)
        return line_chart(title, xs, drawn)

    def pair(title: str, p50: _Get, p95: _Get) -> str:
        return line(title, [("p50", p50), ("p95", p95)])

    figures = [
        pair("TTFT (ms)", lambda p: p["ttft_p50_ms"], lambda p: p["ttft_p95_ms"]),
        pair("E2E latency (ms)", lambda p: p["e2e_p50_ms"], lambda p: p["e2e_p95_ms"]),
        pair("ITL (ms)", lambda p: p["itl_p50_ms"], lambda p: p["itl_p95_ms"]),
        line(
            "Output tokens/s",
            [("all", lambda p: p["output_tokens_per_s"])],
            lambda p: p["output_tokens_per_s"],
        ),
        line("Requests/s (completed)", [("all", lambda p: p["rps"])], lambda p: p["rps"]),
    ]
    if names:
        figures += [
            line("TTFT p95 by name (ms)", [], lambda p: p["ttft_p95_ms"]),
            line("E2E p95 by name (ms)", [], lambda p: p["e2e_p95_ms"]),
        ]
    figures += _users_and_failures(xs, points)
    return (
        f'<section><h2>Over time</h2><p class="muted">{_time_note(series["interval_s"], points)}</p>'
        f'<div class="charts">{"".join(figures)}</div></section>'
    )


def _users_and_failures(xs: Sequence[float], points: Sequence[TimeSeriesPoint]) -> list[str]:
    kinds = sorted({kind for p in points for kind in p["failures_by_kind"]})
    failures = [Series(kind, [float(p["failures_by_kind"].get(kind, 0)) for p in points]) for kind in kinds]
    return [
        line_chart("Users", xs, [Series("users", [p["users"] for p in points])]),
        bar_chart("Failures by kind", xs, failures),
    ]


def _time_note(interval_s: float, points: Sequence[TimeSeriesPoint]) -> str:
    note = f"Per {HTML.number(interval_s, 0)} s bucket, by request end time."
    last = points[-1]
    if abs(last["covered_s"] - interval_s) > 0.05:
        covered = HTML.number(last["covered_s"], 1, trim=True)
        note += f" The last point covers {covered} s of the run: its rates are per second covered."
    return escape(note)
