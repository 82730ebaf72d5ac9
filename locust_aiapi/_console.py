"""Console text for the end of a run: thresholds, goodput, per-phase table, open model, cost."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["render_extras", "render_thresholds"]


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1e6:
        return f"{value:.3g}"
    return f"{value:.{digits}f}" if value != int(value) or digits == 0 else f"{int(value)}"


def _pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100.0 * ratio:.1f}%"


def render_thresholds(results: Sequence[Mapping[str, Any]]) -> str:
    """``PASS``/``FAIL`` per threshold with the measured value, and the verdict."""
    if not results:
        return ""
    width = max(len(str(result["threshold"])) for result in results)
    lines = ["Thresholds (locust-aiapi)"]
    for result in results:
        verdict = "PASS" if result["passed"] else "FAIL"
        measured = (
            _num(result["measured"], 3) if result["measured"] is not None else result.get("error") or "-"
        )
        lines.append(f"  {verdict}  {result['threshold']!s:<{width}}  measured {measured}")
    failed = sum(1 for result in results if not result["passed"])
    lines.append(f"  {failed} of {len(results)} failed" if failed else f"  all {len(results)} passed")
    return "\n".join(lines) + "\n"


_Cell = Callable[[Mapping[str, Any]], str]
_PHASE_COLUMNS: tuple[tuple[str, int, _Cell], ...] = (
    ("Phase", 22, lambda row: str(row["label"])),
    ("Users", 6, lambda row: str(row["target_users"])),
    ("Secs", 6, lambda row: _num(row["duration_s"], 0)),
    ("Reqs", 7, lambda row: str(row["count"])),
    ("OK", 7, lambda row: str(row["successes"])),
    ("Fails", 6, lambda row: str(row["failures"])),
    ("Succ%", 6, lambda row: _pct(row["success_rate"]).rstrip("%")),
    ("E2E avg", 8, lambda row: _num(row["e2e_ms"]["mean"], 0)),
    ("med", 7, lambda row: _num(row["e2e_ms"]["p50"], 0)),
    ("p95", 7, lambda row: _num(row["e2e_ms"]["p95"], 0)),
    ("p99", 7, lambda row: _num(row["e2e_ms"]["p99"], 0)),
    ("TTFT p50", 8, lambda row: _num(row["ttft_ms"]["p50"], 0)),
    ("p95", 7, lambda row: _num(row["ttft_ms"]["p95"], 0)),
    ("p99", 7, lambda row: _num(row["ttft_ms"]["p99"], 0)),
    ("Tokens", 9, lambda row: str(row["total_tokens"])),
    ("Out tok/s", 9, lambda row: _num(row["aggregate_output_tokens_per_s"])),
)


def _phase_table(phases: Sequence[Mapping[str, Any]]) -> list[str]:
    header = " ".join(
        title.rjust(width) if i else title.ljust(width) for i, (title, width, _) in enumerate(_PHASE_COLUMNS)
    )
    lines = ["Per phase (requests by the phase they started in; times in ms)", header, "-" * len(header)]
    for row in phases:
        cells = [cell(row) for _, _, cell in _PHASE_COLUMNS]
        first = cells[0] if len(cells[0]) <= 22 else cells[0][:21] + "…"
        rest = (text.rjust(width) for text, (_, width, _) in zip(cells[1:], _PHASE_COLUMNS[1:], strict=True))
        lines.append(" ".join((first.ljust(22), *rest)))
    return lines


def _goodput_line(goodput: Mapping[str, Any] | None, total: Mapping[str, Any]) -> list[str]:
    if goodput is None:
        return []
    slo = ", ".join(f"{name} ≤ {_num(limit)}" for name, limit in goodput["slo"].items())
    row = goodput["total"]
    return [
        f"Goodput (SLO: {slo}): {_pct(row['goodput'])} of {row['completed']} completed requests "
        "met every SLO — "
        f"{_num(row['good_per_s'], 2)} good req/s of {_num(row['completed_per_s'], 2)} req/s; "
        f"output {_num(total['aggregate_output_tokens_per_s'])} tokens/s"
    ]


def _arrival_line(arrival: Mapping[str, Any] | None) -> list[str]:
    if arrival is None:
        return []
    delay = arrival["start_delay_ms"]
    kind = "Poisson" if arrival.get("poisson") else "fixed"
    return [
        f"Open model ({kind} rate {_num(arrival.get('rate_per_s'), 2)}/s): {arrival['issued']} starts due, "
        f"{arrival['started']} started, {arrival['dropped']} dropped ({_pct(arrival['dropped_rate'])}); "
        f"start delay p50 {_num(delay['p50'])} ms, p95 {_num(delay['p95'])} ms, max {_num(delay['max'])} ms"
    ]


def _cost_line(cost: Mapping[str, Any] | None) -> list[str]:
    if not cost or not cost["models"]:
        return []
    total = cost["total_usd"]
    line = "Estimated cost: " + ("-" if total is None else f"${total:.4f}")
    parts = [
        f"{model} ${row['cost_usd']:.4f}" if row["cost_usd"] is not None else f"{model} unpriced"
        for model, row in cost["models"].items()
    ]
    return [f"{line} ({'; '.join(parts)}) — {cost['pricing']}"]


def render_extras(report: Mapping[str, Any]) -> str:
    """Goodput, open model, cost and the per-phase table ('' when there is nothing to say)."""
    lines = _goodput_line(report.get("goodput"), report["total"])
    lines += _arrival_line(report.get("arrival"))
    lines += _cost_line(report.get("cost"))
    if report.get("phases"):
        lines += ["", *_phase_table(report["phases"])]
    return "\n".join(lines) + "\n" if lines else ""
