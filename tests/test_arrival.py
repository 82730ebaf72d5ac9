"""The open model: the scheduler's hand-over, backlog and drops; real runs against a slow mock."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import gevent
import pytest

from locust_aiapi._arrival import ArrivalConfig, ArrivalScheduler, ArrivalStats
from locust_aiapi.mock import MockProcess

from ._support import TEST_LOCUSTFILES, headless, run_locust, start_distributed

OPEN = TEST_LOCUSTFILES / "open_chat.py"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def scheduler(
    max_delay_s: float = 1.0, rate: float = 10.0, poisson: bool = False
) -> tuple[ArrivalScheduler, Clock]:
    clock = Clock()
    config = ArrivalConfig(rate, poisson, max_delay_s)
    return ArrivalScheduler(config, ArrivalStats(), clock=clock, rng=random.Random(7)), clock


def counts(s: ArrivalScheduler) -> tuple[int, int, int]:
    return s.stats.issued, s.stats.started, s.stats.dropped


def test_a_due_start_goes_to_an_idle_user_at_once() -> None:
    s, _ = scheduler()
    user = gevent.spawn(s.take)
    gevent.sleep(0)  # the user is now idle, waiting
    s.issue(5.0)
    assert user.get(timeout=1) == 5.0
    assert counts(s) == (1, 0, 0)  # handed over; started once its request is sent
    s.confirm_start(0.002)
    assert counts(s) == (1, 1, 0) and s.stats.start_delay_ms.count == 1


def test_without_an_idle_user_a_start_waits_then_is_dropped() -> None:
    s, clock = scheduler(max_delay_s=1.0)
    s.issue(1.0)
    clock.now = 1.5
    assert s.take() == 1.0  # waited 0.5 s for a free user: still taken, from its intended time
    s.confirm_start(0.5)
    s.issue(2.0)
    s.issue(2.1)
    clock.now = 3.05  # 2.0 is 1.05 s late: dropped; 2.1 is 0.95 s late: still waiting
    assert s.take() == 2.1
    s.confirm_start(0.95)
    assert counts(s) == (3, 2, 1)


def test_max_delay_zero_drops_at_once_like_k6() -> None:
    s, _ = scheduler(max_delay_s=0.0)
    s.issue(1.0)
    assert counts(s) == (1, 0, 1)


def test_at_the_end_late_starts_are_dropped_and_those_cut_short_not_counted() -> None:
    s, clock = scheduler(max_delay_s=1.0)
    s.issue(1.0)
    s.issue(2.5)
    clock.now = 3.0
    s.stop()
    assert counts(s) == (1, 0, 1)


def test_a_user_stopped_while_waiting_leaves_no_trace() -> None:
    s, _ = scheduler()
    user = gevent.spawn(s.take)
    gevent.sleep(0)
    user.kill()
    s.issue(1.0)  # nobody idle any more: into the backlog
    assert counts(s) == (1, 0, 0) and s.take() == 1.0
    s.stop()  # taken, but no request was sent before the end: not counted
    assert counts(s) == (0, 0, 0)


def test_a_start_handed_to_a_user_stopped_before_its_request_is_not_counted() -> None:
    s, _ = scheduler()
    user = gevent.spawn(s.take)
    gevent.sleep(0)
    user.kill(block=False)  # Locust stops the user: the kill is queued...
    s.issue(1.0)  # ... and a start is handed to it before the kill lands
    gevent.sleep(0.01)
    assert user.dead and counts(s) == (1, 0, 0)
    s.stop()
    assert counts(s) == (0, 0, 0)


def test_gaps_are_fixed_or_exponential_and_split_by_share() -> None:
    fixed, _ = scheduler(rate=8.0)
    assert fixed.next_gap_s() == 0.125
    fixed.share = 0.5
    assert fixed.next_gap_s() == 0.25
    poisson, _ = scheduler(rate=8.0, poisson=True)
    gaps = [poisson.next_gap_s() for _ in range(20000)]
    assert statistics.fmean(gaps) == pytest.approx(0.125, rel=0.03)
    assert statistics.pstdev(gaps) == pytest.approx(0.125, rel=0.05)  # exponential: sd == mean


def test_the_schedule_keeps_time_and_stops() -> None:
    config = ArrivalConfig(100.0, False, 0.0)
    s = ArrivalScheduler(config, ArrivalStats())
    s.start()
    gevent.sleep(0.3)
    s.stop()
    issued = s.stats.issued
    assert 28 <= issued <= 33  # 100/s for 0.3 s, the first one at once
    gevent.sleep(0.05)
    assert s.stats.issued == issued == s.stats.dropped  # nobody took them (max delay 0: dropped at once)


def test_stats_travel_from_workers_and_add_up() -> None:
    worker, master = ArrivalStats(), ArrivalStats()
    worker.issued, worker.started, worker.dropped = 10, 7, 3
    worker.start_delay_ms.add(12.5)
    payload = worker.take_report()
    assert payload is not None and worker.issued == 0 and worker.take_report() is None
    master.absorb(payload)
    master.absorb(payload)
    report = master.report(ArrivalConfig(5.0))
    assert report is not None
    assert (report["issued"], report["started"], report["dropped"]) == (20, 14, 6)
    assert report["dropped_rate"] == 0.3 and report["start_delay_ms"]["count"] == 2
    with pytest.raises(ValueError):
        master.absorb({"issued": 1})


def test_latency_counts_from_the_intended_start_against_a_slow_server(tmp_path: Path) -> None:
    # the mock serves 2 at a time, ~0.32 s each: ~6 requests/s; 12/s arrive, the pool has 4 users
    mock_args = ["--max-concurrency", "2", "--ttft-ms", "300", "--itl-ms", "5", "--output-tokens", "5"]
    with MockProcess(mock_args) as mock:
        args = headless(
            mock.url, 4, "5s", "--ai-no-metrics", "--ai-arrival-rate", "12", "--ai-arrival-max-delay", "0.5"
        )
        run = run_locust(OPEN, tmp_path, args, timeout_s=60)
    assert run.returncode == 0, run.stderr[-3000:]
    arrival = run.summary["arrival"]
    assert (arrival["rate_per_s"], arrival["poisson"], arrival["max_delay_s"]) == (12.0, False, 0.5)
    assert 50 <= arrival["issued"] <= 66, arrival  # 12/s for 5 s
    assert arrival["issued"] == arrival["started"] + arrival["dropped"]
    assert arrival["dropped"] >= 10  # the pool cannot keep up: starts are dropped, and counted
    records = run.records
    assert len(records) == arrival["started"]  # every start made exactly one request
    # start_time is the intended start: on the 1/12 s grid of the schedule
    first = min(r["start_time"] for r in records)
    offsets = [(r["start_time"] - first) * 12.0 for r in records]
    assert max(abs(x - round(x)) for x in offsets) < 0.05, offsets
    done = sorted((r for r in records if r["outcome"] == "success"), key=lambda r: r["start_time"])
    assert min(r["ttft_ms"] for r in done) >= 300.0
    early = statistics.median(r["ttft_ms"] for r in done[:4])
    late = statistics.median(r["ttft_ms"] for r in done[len(done) // 2 :])
    assert late >= early + 300.0, (early, late)  # waiting for a free user counts
    assert arrival["start_delay_ms"]["p50"] >= 250.0
    assert run.summary["total"]["ttft_ms"]["p50"] >= 600.0
    assert [p["label"] for p in run.summary["phases"]] == ["open model, 4 users"]
    assert "Open model (fixed rate 12/s)" in run.stderr


def test_a_missing_rate_is_rejected_at_start(tmp_path: Path) -> None:
    run = run_locust(OPEN, tmp_path, headless("http://127.0.0.1:9", 2, "2s"), with_reports=False)
    assert run.returncode == 2
    assert "locust-aiapi: error: no arrival rate for OpenChatUser: pass --ai-arrival-rate N" in run.stderr
    assert "Traceback" not in run.stderr


def test_workers_share_the_rate_and_the_master_judges_thresholds(tmp_path: Path) -> None:
    with MockProcess(["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "5"]) as mock:
        master_args = [
            "--ai-no-metrics", "--ai-arrival-rate", "10",
            "--ai-threshold", "dropped_rate<0.5", "--ai-threshold", "ttft_ms:p50<1",
        ]  # fmt: skip
        run = start_distributed(OPEN, tmp_path, mock.url, 4, "4s", workers=2, master_args=master_args)
        assert run.wait(60) == 3, run.log("master")[-3000:]  # the TTFT threshold fails
    arrival = run.summary["arrival"]
    # 10/s for 4 s in all (~40, a worker may start or stop late), not 10/s per worker (~80)
    assert 32 <= arrival["issued"] <= 60, arrival
    assert arrival["issued"] == arrival["started"] + arrival["dropped"]
    assert len(run.worker_records()) == arrival["started"]
    results = {r["threshold"]: r["passed"] for r in run.summary["thresholds"]}
    assert results == {"dropped_rate<0.5": True, "ttft_ms:p50<1": False}
    assert "Shutting down (exit code 3)" in run.log("master")
