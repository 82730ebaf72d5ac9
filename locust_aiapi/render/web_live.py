"""What the web UI shows while a test runs: the LLM tab's rows and the live page's JSON.

Both are read from the run's report (:func:`~locust_aiapi._end_of_run.build_report`), so a figure in
the web UI is the figure of the summary JSON, formatted by :mod:`.format` like the HTML report.
"""

from __future__ import annotations

from typing import Any

from .._report_types import Description, GoodputRow, NameRow, RunReport
from .client_lag import short_text
from .format import HTML

__all__ = ["cell", "live_view", "phase_label", "tab_rows"]

_LATENCIES = (("ttft", "ttft_ms"), ("ttfc", "ttfc_ms"), ("itl", "itl_ms"), ("e2e", "e2e_ms"))


def cell(description: Description) -> str:
    """``p50 / p95 / p99`` of a latency, in ms with one decimal ("–" without samples)."""
    return " / ".join(HTML.number(description[stat], 1) for stat in ("p50", "p95", "p99"))


def _failures(row: NameRow) -> str:
    kinds = sorted(row["failures_by_kind"].items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{kind} {count}" for kind, count in kinds) or "0"


def _goodput(row: GoodputRow | None) -> str:
    if row is None or row["goodput"] is None:
        return HTML.missing
    return f"{HTML.number(row['goodput'] * 100, 1)} %"


def _row(name: str, row: NameRow, goodput: GoodputRow | None) -> dict[str, str]:
    data = {
        "name": name,
        "requests": HTML.number(row["count"]),
        "failures": _failures(row),
        "tokens": HTML.number(row["aggregate_output_tokens_per_s"], 1),
        "goodput": _goodput(goodput),
    }
    for key, metric in _LATENCIES:
        data[key] = cell(row[metric])  # type: ignore[literal-required]
    return data


def tab_rows(report: RunReport, base: str = "", phase: str | None = None) -> list[dict[str, str]]:
    """One row per request name and the Aggregated one, one per conversation turn (when the run had
    conversations), then a row that links to the live page (and says the shape's current phase)."""
    goodput = report.get("goodput")
    by_name = goodput["requests"] if goodput else {}
    rows = [_row(name, row, by_name.get(name)) for name, row in report["requests"].items()]
    rows.append(_row("Aggregated", report["total"], goodput["total"] if goodput else None))
    # conversations: how TTFT grows with the context, turn by turn (what they are tested for)
    workload = report.get("workload")
    for turn in (workload or {}).get("turns") or []:
        rows.append(_row(f"Aggregated · turn {turn['turn']}", turn, None))
    # Locust's table sorts rows by name: the arrow puts this one after the names of ASCII letters
    where = f"{phase} · " if phase else ""
    lag = _client_lag(report)
    rows.append({"name": f"→ {where}{lag}charts, thresholds, cost: {base}/ai/ (and Download Data)"})
    return rows


def _client_lag(report: RunReport) -> str:
    """``client lag p99 0.42 ms · ``, ``CLIENT-BOUND lag p99 12 ms (limit 5 ms): add workers · ``, or ""."""
    lag = report.get("client_lag")
    text = short_text(lag["p99_ms"], lag["client_bound"]) if lag is not None else None
    if lag is None or text is None:
        return ""
    if lag["client_bound"]:
        return f"{text} (limit {HTML.number(lag['max_client_lag_ms'], 1)} ms): add workers · "
    return f"client {text} · "


def phase_label(state: Any) -> str | None:
    """``phase 2: 100 users``: the load shape's current phase (None without a shape of ours)."""
    phase = _phase(state)
    return f"phase {phase['index'] + 1}: {phase['label']}" if phase is not None else None


def _phase(state: Any) -> dict[str, Any] | None:
    index = state.phases.current
    info = state.phases.info.get(index) if index is not None else None
    if info is None:
        return None
    return {"index": index, "label": info.label, "target_users": info.target_users}


def live_view(report: RunReport, state: Any, environment: Any, base: str) -> dict[str, Any]:
    """The live page's JSON: the report, the rows as the tab shows them, the phase, the run's state."""
    runner = environment.runner
    return {
        "test": state.tests_started,
        "running": bool(state.running),
        "runner_state": str(getattr(runner, "state", "")),
        "users": int(getattr(runner, "user_count", 0) or 0),
        "phase": _phase(state),
        "rows": tab_rows(report, base)[:-1],
        "report": report,
        "downloads": {
            "summary_json": f"{base}/ai/summary.json",
            "report_html": f"{base}/ai/report.html?download=1",
            "requests_jsonl": f"{base}/ai/requests.jsonl" if state.options.requests_jsonl else None,
        },
    }
