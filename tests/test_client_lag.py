"""Client lag: summary rows, thresholds, the client_bound verdict, the event-loop probe, and a real run."""

from __future__ import annotations

import time
from pathlib import Path

import gevent
import pytest

from locust_aiapi import FailureKind
from locust_aiapi import _rx_stamps as rx
from locust_aiapi._client_lag import LoopLagProbe, client_lag_report
from locust_aiapi._distributed import PAYLOAD_KEY, absorb_report, take_report
from locust_aiapi._histogram import LogHistogram
from locust_aiapi._name_stats import NameStats
from locust_aiapi._records import RequestKind, RequestRecord, StampSource
from locust_aiapi._report_types import run_report
from locust_aiapi._run_state import RunState
from locust_aiapi._summary import LLMSummary
from locust_aiapi._thresholds import Context, evaluate
from locust_aiapi._workers import WorkerLedger
from locust_aiapi.mock import MockProcess
from locust_aiapi.render import client_lag as render

from ._support import TEST_LOCUSTFILES, headless, run_locust


def _record(lags_ms: list[float], kernel: bool = True, shared_first: bool = False) -> RequestRecord:
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=1.0, start_s=0.0, end_s=0.5)
    record.client_lags_s = [lag / 1000.0 for lag in lags_ms]
    record.timestamps = StampSource.KERNEL if kernel else StampSource.USER
    record.first_token_shared_read = shared_first
    return record


def _stats(*records: RequestRecord) -> NameStats:
    stats = NameStats()
    for record in records:
        stats.add(record)
    return stats


def test_a_row_has_the_lag_of_every_read_and_survives_the_trip_to_the_master() -> None:
    failed = _record([40.0], shared_first=True)
    failed.fail(FailureKind.TIMEOUT, "timed out")
    stats = _stats(_record([0.1, 0.2, 0.3]), _record([], kernel=False), failed)
    row = stats.report_row()
    assert row["client_lag_ms"]["count"] == 4  # a failed request's reads measure the client too
    assert row["client_lag_ms"]["max"] == pytest.approx(40.0)
    assert row["kernel_stamped"] == 2 and row["first_token_shared_reads"] == 1
    copy = NameStats.from_dict(stats.to_dict())
    merged = NameStats()
    merged.merge(copy)
    merged.merge(_stats(_record([1.0])))
    assert merged.client_lag_ms.count == 5 and merged.kernel_stamped == 3
    assert copy.report_row() == row


def test_client_lag_is_a_threshold_with_a_statistic() -> None:
    stats = _stats(*(_record([1.0]) for _ in range(98)), _record([9.0, 9.0]))
    context = Context({"chat": stats}, stats, None, None)
    passed, failed, per_name, bad = evaluate(
        ["client_lag_ms:p99<10", "client_lag_ms:p99<5", "chat:client_lag_ms:max<=9", "client_lag_ms<5"],
        context,
    )
    assert passed["passed"] and passed["measured"] == pytest.approx(9.0, rel=0.01)
    assert not failed["passed"]
    assert per_name["passed"]
    assert not bad["passed"] and "needs a statistic" in (bad["error"] or "")


def test_the_run_is_client_bound_when_the_kernel_measured_p99_is_over_the_limit() -> None:
    stats = _stats(*(_record([0.5]) for _ in range(95)), *(_record([12.0]) for _ in range(5)))
    loop = LogHistogram()
    loop.add(50.0)  # ignored: the kernel measured it
    report = client_lag_report(stats, loop, 5.0, {"worker-b": stats.client_lag_ms})
    assert report["source"] == "kernel" and report["client_bound"]
    assert report["p99_ms"] == pytest.approx(12.0, rel=0.01) and report["p50_ms"] == pytest.approx(
        0.5, rel=0.01
    )
    assert "add workers" in (report["advice"] or "")
    assert report["by_worker"]["worker-b"]["count"] == 100
    assert not client_lag_report(stats, loop, 20.0)["client_bound"]


def test_without_kernel_stamps_the_loop_probe_decides_and_without_either_nothing_does() -> None:
    stats = _stats(_record([], kernel=False))
    loop = LogHistogram()
    for lag_ms in (0.2, 0.3, 8.0):
        loop.add(lag_ms)
    report = client_lag_report(stats, loop, 5.0)
    assert report["source"] == "loop_probe" and report["client_bound"] and report["max_ms"] == 8.0
    empty = client_lag_report(stats, LogHistogram(), 5.0)
    assert empty["source"] is None and not empty["client_bound"] and empty["p99_ms"] is None


def test_the_probe_measures_a_hub_held_by_busy_code() -> None:
    probe = LoopLagProbe(interval_s=0.02)
    probe.start()
    try:
        gevent.sleep(0.1)  # idle: the timer runs on time
        idle_max_ms = probe.lag_ms.max or 0.0
        until = time.perf_counter() + 0.15
        while time.perf_counter() < until:  # hold the hub: the due timer cannot run
            pass
        gevent.sleep(0.05)
    finally:
        probe.stop()
    assert not probe.running
    assert idle_max_ms < 20.0
    assert (probe.lag_ms.max or 0.0) > 100.0
    shipped = probe.take_report()
    assert shipped is not None and probe.lag_ms.count == 0
    master = LoopLagProbe()
    master.absorb(LogHistogram.from_dict(shipped))
    assert (master.lag_ms.max or 0.0) > 100.0


def test_console_and_html_say_client_bound_with_the_advice() -> None:
    stats = _stats(*(_record([12.0]) for _ in range(3)))
    summary = LLMSummary()
    summary.by_key[("chat", "m")] = stats
    sections = {"thresholds": [], "goodput": None, "phases": [], "arrival": None}
    report = run_report(summary.report_dict(), sections)  # type: ignore[arg-type]
    report["client_lag"] = client_lag_report(stats, LogHistogram(), 5.0, {"w1": stats.client_lag_ms})
    lines = render.console_lines(report, 100)
    assert lines[0].startswith("Client lag (kernel receive stamps): p50 12")
    assert all(len(line) <= 100 for line in lines)
    text = " ".join(line.strip() for line in lines)
    assert "CLIENT-BOUND: client lag p99 12" in text and "add workers" in text
    html = render.html_section(report)
    assert "Client-bound" in html and "w1: p99 12" in html
    report["client_lag"] = client_lag_report(stats, LogHistogram(), 50.0)
    assert not any("CLIENT-BOUND" in line for line in render.console_lines(report, 100))
    assert "Not client-bound" in render.html_section(report)


@pytest.mark.skipif(not rx.KERNEL_STAMPS_AVAILABLE, reason="no SO_TIMESTAMPNS here")
def test_a_real_run_reports_kernel_measured_client_lag(tmp_path: Path) -> None:
    mock_args = ["--ttft-ms", "20", "--itl-ms", "5", "--output-tokens", "8"]
    with MockProcess(mock_args) as mock:
        run = run_locust(
            TEST_LOCUSTFILES / "counting_chat.py",
            tmp_path,
            headless(mock.url, 5, "3s", "--stop-timeout", "5", "--ai-threshold", "client_lag_ms:p99<1000"),
            env={"TEST_WAIT_S": "0.05"},
        )
    assert run.returncode == 0, run.stderr[-2000:]
    lag = run.summary["client_lag"]
    assert lag["source"] == "kernel" and lag["client_lag_ms"]["count"] > 50
    assert 0.0 <= lag["p50_ms"] <= lag["p99_ms"] < 1000.0
    assert run.summary["thresholds_passed"] is True
    total = run.summary["total"]
    assert total["count"] >= total["kernel_stamped"] >= total["count"] - total["cancelled"] > 0, total
    stamps = [r["timestamps"] for r in run.records if r["outcome"] == "success"]
    assert stamps.count("kernel") == len(stamps), stamps
    assert "Client lag (kernel receive stamps)" in run.stdout + run.stderr


def test_a_worker_ships_its_client_lag_and_its_loop_probe_to_the_master() -> None:
    master = RunState(ledger=WorkerLedger())
    for worker_id, lag_ms in (("w1", 1.0), ("w2", 30.0)):
        worker = RunState()
        worker.record(_record([lag_ms, lag_ms]))
        worker.loop_lag.lag_ms.add(lag_ms / 10)
        payload = take_report(worker)
        assert payload is not None and worker.loop_lag.lag_ms.count == 0
        absorb_report(master, worker_id, {PAYLOAD_KEY: payload})
    assert master.ledger is not None
    report = client_lag_report(
        master.summary.total, master.loop_lag.lag_ms, 5.0, master.ledger.client_lag_by_worker
    )
    assert report["client_lag_ms"]["count"] == 4 and report["loop_lag_ms"]["count"] == 2
    assert report["by_worker"]["w1"]["max"] == pytest.approx(1.0)
    assert report["by_worker"]["w2"]["max"] == pytest.approx(30.0) and report["client_bound"]
    broken = {PAYLOAD_KEY: {"loop_lag": {"count": "many"}}}
    absorb_report(master, "w3", broken)
    assert master.ledger.rejected_reports == 1 and "w3" not in master.ledger.reports_by_worker
