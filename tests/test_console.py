"""Console text, pure: the live line within 100 columns, tables at every width, thresholds with units."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace

import pytest

from locust_aiapi._live import wanted
from locust_aiapi._records import FailureKind
from locust_aiapi._summary import LLMSummary
from locust_aiapi._timeseries import INTERVAL_S, TimeSeries
from locust_aiapi.render.console import render_summary, render_thresholds
from locust_aiapi.render.live import LiveStatus, clock, live_line

from .test_summary import chat_ok, failed

BUSY = LiveStatus(
    elapsed_s=3725.0,
    total_s=7200.0,
    users=1200,
    phase="phase 12/20: ramp to 1200 users",
    window_s=10.0,
    requests_per_s=1234.56,
    ttft_p50_ms=1234.0,
    ttft_p95_ms=9876.5,
    output_tokens_per_s=12345.0,
    requests=4_000_000,
    failures_by_kind=(("rate_limited", 120_000), ("server_error", 4_000), ("timeout", 12), ("truncated", 1)),
)


def test_clock() -> None:
    assert [clock(s) for s in (0.0, 5.9, 75.4, 3725.0, -1.0)] == ["0:00", "0:05", "1:15", "1:02:05", "0:00"]


def test_the_live_line_says_everything_when_it_fits() -> None:
    quiet = dataclasses.replace(
        BUSY, elapsed_s=65.0, total_s=180.0, users=20, phase="phase 2/3: hold", requests_per_s=9.74,
        ttft_p50_ms=203.4, ttft_p95_ms=250.0, output_tokens_per_s=1234.0, failures_by_kind=(("timeout", 3),),
    )  # fmt: skip
    assert live_line(quiet) == (
        "LLM 1:05/3:00  20 users  phase 2/3: hold  9.7 req/s  TTFT p50/p95 203/250 ms  1234 tok/s  3 timeout"
    )


def test_the_live_line_drops_the_phase_label_then_continues_on_a_second_line() -> None:
    minute = dataclasses.replace(
        BUSY, elapsed_s=65.0, total_s=540.0, users=12, ttft_p50_ms=234.0, ttft_p95_ms=987.0,
        requests_per_s=123.4, output_tokens_per_s=345.0, failures_by_kind=(("server_error", 40),),
    )  # fmt: skip
    assert live_line(minute) == (
        "LLM 1:05/9:00  12 users  phase 12/20  123 req/s  TTFT p50/p95 234/987 ms  345 tok/s  40 server_error"
    )
    several = dataclasses.replace(minute, failures_by_kind=BUSY.failures_by_kind)
    assert live_line(several).split("\n") == [
        "LLM 1:05/9:00  12 users  phase 12/20  123 req/s  TTFT p50/p95 234/987 ms  345 tok/s",
        "    120000 rate_limited, 4000 server_error, 12 timeout, 1 truncated",
    ]


def test_figures_too_large_for_one_line_continue_on_indented_lines_within_the_width() -> None:
    for width in (100, 80, 60):
        lines = live_line(BUSY, width).split("\n")
        assert len(lines) == (2 if width == 100 else 3) and all(len(line) <= width for line in lines), lines
        assert all(line.startswith("    ") for line in lines[1:])
    assert live_line(BUSY, 60).endswith("\n    120000 rate_limited, 4000 server_error, +2 more")


def test_the_live_line_before_any_request_and_without_failures_or_a_shape() -> None:
    idle = dataclasses.replace(BUSY, total_s=None, phase=None, window_s=0.0, requests=0, failures_by_kind=())
    assert live_line(idle) == "LLM 1:02:05  1200 users  no request ended yet  0 failed"
    one_kind = dataclasses.replace(BUSY, failures_by_kind=(("server_error", 10**9),))
    assert all(len(line) <= 80 for line in live_line(one_kind, 80).split("\n"))


def test_a_window_holds_only_whole_buckets() -> None:
    series = TimeSeries()
    start = 1000.0 * INTERVAL_S  # a bucket boundary
    records = [
        chat_ok(offset, ttft_s=0.25, tokens=4, gap_s=0.01, tail_s=0.0, prompt=1) for offset in range(8)
    ]
    for offset, record in enumerate(records):
        series.add(dataclasses.replace(record, start_epoch_s=start + offset))  # ends 0.28 s later
    series.add(failed(0.0, 0.5, FailureKind.TIMEOUT))  # long ago: outside every window below
    whole = series.window(start, start + 8.0)
    assert (whole.seconds, whole.requests, whole.output_tokens) == (8.0, 8, 32)
    assert whole.requests_per_s == 1.0 and whole.output_tokens_per_s == 4.0
    assert whole.ttft_p50_ms == pytest.approx(250.0, rel=0.01)
    # [start + 1, start + 7): the buckets starting at +2 and +4 only (the one at +6 ends at +8)
    inner = series.window(start + 1.0, start + 7.0)
    assert (inner.seconds, inner.requests) == (4.0, 4)
    empty = series.window(start + 1.0, start + 2.5)
    assert (empty.seconds, empty.requests, empty.requests_per_s, empty.ttft_p95_ms) == (0.0, 0, None, None)


def summary_report() -> object:
    summary = LLMSummary()
    for offset in range(20):
        name = "a-long-request-name-for-the-table" if offset % 2 else "chat"
        summary.add(
            chat_ok(offset * 0.1, ttft_s=0.25, tokens=999, gap_s=0.001, tail_s=0.0, prompt=1, name=name)
        )
    summary.add(failed(0.0, 0.5, FailureKind.RATE_LIMITED))
    return summary.report_dict()


@pytest.mark.parametrize("width", [60, 80, 100, 118])
def test_below_120_columns_the_summary_is_two_stacked_tables_that_fit(width: int) -> None:
    lines = render_summary(summary_report(), width).splitlines()  # type: ignore[arg-type]
    assert max(len(line) for line in lines) <= max(width, 80)
    assert sum(1 for line in lines if line.startswith("Aggregated ") and "rate_limited" not in line) == 2
    assert sum(1 for line in lines if line.startswith("Name ")) == 3  # two tables, then failures by kind


def test_from_120_columns_the_summary_is_one_table() -> None:
    lines = render_summary(summary_report(), 120).splitlines()  # type: ignore[arg-type]
    assert max(len(line) for line in lines) <= 120
    assert sum(1 for line in lines if line.startswith("Aggregated ") and "rate_limited" not in line) == 1


def test_thresholds_show_units() -> None:
    def result(threshold: str, metric: str | None, measured: float | None, error: str | None = None) -> dict:
        fields = {"threshold": threshold, "measured": measured, "passed": error is None, "error": error}
        return {**fields, "metric": metric} if metric else fields

    results = [
        result("ttft_ms:p95<3000", "ttft_ms", 207.479),
        result("error_rate<5%", "error_rate", 0.0625),
        result("output_tokens_per_s>200", "output_tokens_per_s", 1234.5),
        result("rps>1", "rps", 3.14159),
        result("failures<10", "failures", 4),
        result("bogus", None, None, "not a threshold"),
    ]
    text = render_thresholds(results)  # type: ignore[arg-type]
    assert "measured 207.5 ms" in text
    assert "measured 6.2%" in text
    assert "measured 1234 tokens/s" in text
    assert "measured 3.14 req/s" in text
    assert re.search(r"failures<10 +measured 4$", text, re.M)
    assert "measured not a threshold" in text


def test_the_live_line_follows_locusts_rule_for_its_own_table() -> None:
    def environment(**options: bool) -> SimpleNamespace:
        return SimpleNamespace(parsed_options=SimpleNamespace(**options), runner=None)

    assert wanted(environment(headless=True))
    assert not wanted(environment(headless=True, only_summary=True))  # the end-of-run figures only
    assert not wanted(environment(headless=False))  # the web UI shows the figures
    assert wanted(environment(headless=False, print_stats=True))
    assert not wanted(SimpleNamespace(parsed_options=None, runner=None))  # Locust as a library


def test_the_live_rate_early_in_a_test_is_over_the_time_that_ran() -> None:
    """6 s into a test at 4 requests/s the line says ~4/s, not 4 x 6/10 (a 10 s window half empty)."""
    import time

    from locust_aiapi._live import live_status
    from locust_aiapi._run_state import RunState

    state = RunState()
    now = time.time()
    for k in range(24):  # 4 per second over the last 6 s, each ending 0.1 s after its start
        record = chat_ok(0.0, ttft_s=0.05, tokens=4, gap_s=0.01, tail_s=0.01, prompt=1)
        state.series.add(dataclasses.replace(record, start_epoch_s=now - 6.0 + k * 0.25))
    environment = SimpleNamespace(runner=SimpleNamespace(user_count=4), shape_class=None, parsed_options=None)
    status = live_status(environment, state, started_s=time.monotonic() - 6.0)
    assert status.requests_per_s is not None and 3.0 <= status.requests_per_s <= 5.0, status


def test_a_wider_terminal_shows_long_request_names_whole() -> None:
    summary = LLMSummary()
    for name in ("conversation/gifts-and-returns", "conversation/order-status"):
        record = chat_ok(0.0, ttft_s=0.2, tokens=4, gap_s=0.01, tail_s=0.0, prompt=1)
        summary.add(dataclasses.replace(record, name=name))
    wide = render_summary(summary.report_dict(), width=200)
    assert "conversation/gifts-and-returns " in wide and "conversation/order-status " in wide
    assert all(len(line) <= 200 for line in wide.splitlines())
    standard = render_summary(summary.report_dict(), width=120)
    assert "conversation/gi…" in standard and all(len(line) <= 120 for line in standard.splitlines())


def test_the_live_line_says_the_client_lag_and_when_the_run_is_client_bound() -> None:
    quiet = dataclasses.replace(
        BUSY, elapsed_s=5.0, total_s=10.0, users=2, phase=None, requests_per_s=9.5, ttft_p50_ms=41.0,
        ttft_p95_ms=45.0, output_tokens_per_s=70.0, failures_by_kind=(), client_lag_p99_ms=0.314,
    )  # fmt: skip
    assert live_line(quiet) == (
        "LLM 0:05/0:10  2 users  9.5 req/s  TTFT p50/p95 41/45 ms  70 tok/s  0 failed  lag p99 0.31 ms"
    )
    bound = dataclasses.replace(quiet, client_lag_p99_ms=12.0, client_bound=True)
    assert live_line(bound).endswith("  0 failed\n    CLIENT-BOUND lag p99 12 ms")  # 104 columns in one
    idle = dataclasses.replace(quiet, window_s=0.0, client_lag_p99_ms=0.05)
    assert live_line(idle) == "LLM 0:05/0:10  2 users  no request ended yet  0 failed  lag p99 0.05 ms"
    assert "lag p99 3.1 ms" in live_line(dataclasses.replace(quiet, client_lag_p99_ms=3.14))
    for width in (100, 80, 60):
        lagging = dataclasses.replace(BUSY, client_lag_p99_ms=123.456, client_bound=True)
        assert all(len(line) <= width for line in live_line(lagging, width).split("\n"))
