"""Load shapes: option parsing, each shape's tick() sequence on a fake clock, real runs per shape."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from locust_aiapi import (
    ConstantArrivalRateShape,
    Phase,
    RequestKind,
    RequestRecord,
    SpikeShape,
    SpikeSpec,
    StagesShape,
    StepSweepShape,
    _shapes,
)
from locust_aiapi._phases import PhaseAggregator, PhaseInfo
from locust_aiapi._shape_specs import parse_duration_s, parse_spike, parse_stages, parse_steps
from locust_aiapi.mock import MockProcess

from ._support import TEST_LOCUSTFILES, headless, run_locust, start_distributed

SHAPED = TEST_LOCUSTFILES / "shaped_chat.py"
FAST_MOCK = ["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "8"]


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5s", 1.5), ("250ms", 0.25), ("2m", 120.0), ("1h30m", 5400.0), ("1m30s", 90)],  # noqa: E501
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1", "1x", "m", "1m 30s", "nan", "inf", "3mm"])
def test_bad_durations_are_rejected_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s(text)


def test_stages_steps_and_spike_specs() -> None:
    assert parse_stages("2m:300, 5m:300,2m:0") == ((120.0, 300), (300.0, 300), (120.0, 0))
    assert parse_steps("50,100,200") == (50, 100, 200)
    assert parse_spike("peak=500,base=50") == SpikeSpec(base=50, peak=500)
    spike = parse_spike("base=5,peak=50,before=10s,hold=20s,after=5s,rate=25")
    assert spike == SpikeSpec(5, 50, 10.0, 20.0, 5.0, 25.0)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_stages, "2m", "DURATION:USERS"),
        (parse_stages, "2m:x", "whole number"),
        (parse_stages, "2m:300,,1m:0", "comma-separated"),
        (parse_steps, "50,0", "at least 1 user"),
        (parse_steps, "", "comma-separated"),
        (parse_spike, "base=50", "required"),
        (parse_spike, "base=50,peak=40", "above base"),
        (parse_spike, "base=5,peak=50,spike=1", "not one of"),
        (parse_spike, "base=5,peak=50,rate=0", "more than 0"),
    ],
)
def test_bad_specs_say_what_is_wrong(parse: Any, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


# --- tick() on a fake clock -----------------------------------------------------------------------


def ticks(shape: Any, times: list[float], options: Any = None, monkeypatch: Any = None) -> list[Any]:
    """tick() at each run time; phase announcements are collected in shape.announced."""
    shape.runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=options))
    shape.announced = []
    clock = iter(times)
    shape.get_run_time = lambda: next(clock)
    announce = lambda env, phase: shape.announced.append(phase)  # noqa: E731
    monkeypatch.setattr(_shapes, "announce_phase", announce)
    return [shape.tick() for _ in times]


def test_stages_ramp_linearly_like_k6(monkeypatch: pytest.MonkeyPatch) -> None:
    class Ramp(StagesShape):
        stages = ((120.0, 300), (300.0, 300), (120.0, 0))

    shape = Ramp()
    got = ticks(shape, [0, 60, 119.9, 120, 419.9, 420, 539.9, 540], monkeypatch=monkeypatch)
    assert got == [(300, 2.5), (300, 2.5), (300, 2.5), (300, 300.0), (300, 300.0), (0, 2.5), (0, 2.5), None]
    labels = [phase.label for phase in shape.announced]
    assert labels == ["ramp 0→300 users", "hold 300 users", "ramp 300→0 users"]


def test_step_sweep_holds_each_step(monkeypatch: pytest.MonkeyPatch) -> None:
    class Sweep(StepSweepShape):
        steps = (50, 100, 200)
        step_duration_s = 60.0

    shape = Sweep()
    got = ticks(shape, [0, 59, 60, 119, 120, 179.9, 180], monkeypatch=monkeypatch)
    assert got == [(50, 50.0), (50, 50.0), (100, 50.0), (100, 50.0), (200, 100.0), (200, 100.0), None]
    announced = [(p.index, p.users, p.start_s) for p in shape.announced]
    assert announced == [(0, 50, 0.0), (1, 100, 60.0), (2, 200, 120.0)]


def test_spike_jumps_holds_and_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    class FlashSale(SpikeShape):
        spike = SpikeSpec(base=50, peak=500, before_s=30.0, hold_s=180.0, after_s=60.0)

    shape = FlashSale()
    got = ticks(shape, [0, 29, 30, 209, 210, 269, 270], monkeypatch=monkeypatch)
    assert got == [(50, 50.0), (50, 50.0), (500, 450.0), (500, 450.0), (50, 450.0), (50, 450.0), None]
    assert [phase.label for phase in shape.announced] == ["baseline", "spike", "recovery"]


def test_options_override_the_class_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Sweep(StepSweepShape):
        steps = (50, 100)

    options = SimpleNamespace(ai_steps="2,4", ai_step_duration="3s")
    assert ticks(Sweep(), [0, 3, 6], options, monkeypatch) == [(2, 2.0), (4, 2.0), None]
    options = SimpleNamespace(ai_spike="base=1,peak=3,before=1s,hold=1s,after=1s,rate=10")
    assert ticks(SpikeShape(), [0, 1, 2, 3], options, monkeypatch) == [(1, 1.0), (3, 10.0), (1, 10.0), None]
    options = SimpleNamespace(ai_stages="2s:4,2s:0")
    assert ticks(StagesShape(), [0, 2, 4], options, monkeypatch) == [(4, 2.0), (0, 2.0), None]


def test_the_open_model_pool_uses_users_and_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    options = SimpleNamespace(num_users=5, run_time=10)
    assert ticks(ConstantArrivalRateShape(), [0, 9.9, 10], options, monkeypatch) == [(5, 5.0), (5, 5.0), None]
    forever = ticks(ConstantArrivalRateShape(), [0, 1e6], SimpleNamespace(num_users=3), monkeypatch)
    assert forever == [(3, 3.0), (3, 3.0)]


def test_a_shape_without_a_plan_says_how_to_give_one() -> None:
    with pytest.raises(ValueError, match="--ai-steps"):
        StepSweepShape().plan(None)
    with pytest.raises(ValueError, match="--ai-stages"):
        StagesShape().plan(None)
    with pytest.raises(ValueError, match="--ai-spike"):
        SpikeShape().plan(None)
    with pytest.raises(ValueError, match="-u N"):
        ConstantArrivalRateShape().plan(None)


def test_a_plan_broken_after_the_start_stops_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    # the web UI can change options after the command line was checked: log it, stop, do not raise
    assert ticks(StepSweepShape(), [0], SimpleNamespace(ai_steps="10,x"), monkeypatch) == [None]


def test_phase_end_times() -> None:
    assert Phase(0, "x", 1, 1.0, 10.0, 5.0).end_s == 15.0
    assert Phase(0, "x", 1, 1.0, 10.0, None).end_s is None


# --- real runs against the mock -------------------------------------------------------------------


def shaped_run(tmp_path: Path, url: str, shape: str, *args: str) -> Any:
    run = run_locust(
        SHAPED,
        tmp_path,
        ["--headless", "--host", url, "--ai-no-metrics", "--stop-timeout", "2", *args],
        env={"TEST_SHAPE": shape},
        timeout_s=60,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def check_phases(run: Any, labels: list[str], users: list[int]) -> list[dict[str, Any]]:
    phases = run.summary["phases"]
    assert [p["label"] for p in phases] == labels
    assert [p["target_users"] for p in phases] == users
    assert sum(p["count"] for p in phases) == run.summary["total"]["count"]
    assert all(p["count"] > 0 and p["failures"] == 0 for p in phases)
    return list(phases)


def test_a_real_step_sweep_reports_one_row_per_step(tmp_path: Path) -> None:
    with MockProcess(FAST_MOCK) as mock:
        run = shaped_run(tmp_path, mock.url, "sweep", "--ai-steps", "2,4,8", "--ai-step-duration", "2s")
    phases = check_phases(run, ["2 users", "4 users", "8 users"], [2, 4, 8])
    assert [round(p["duration_s"]) for p in phases] == [2, 2, 2]
    assert phases[0]["count"] < phases[1]["count"] < phases[2]["count"]  # more users, more requests
    users = [p["users"] for p in run.summary["timeseries"]["points"] if p["users"] is not None]
    assert max(users) == 8
    assert "Per phase" in run.stdout + run.stderr


def test_a_real_spike(tmp_path: Path) -> None:
    with MockProcess(FAST_MOCK) as mock:
        spec = "base=2,peak=6,before=2s,hold=2s,after=2s"
        run = shaped_run(tmp_path, mock.url, "spike", "--ai-spike", spec)
    baseline, spike, recovery = check_phases(run, ["baseline", "spike", "recovery"], [2, 6, 2])
    assert spike["count"] > 2 * baseline["count"]
    assert spike["count"] > 2 * recovery["count"]


def test_real_stages(tmp_path: Path) -> None:
    with MockProcess(FAST_MOCK) as mock:
        run = shaped_run(tmp_path, mock.url, "stages", "--ai-stages", "2s:4,2s:4,2s:0")
    check_phases(run, ["ramp 0→4 users", "hold 4 users", "ramp 4→0 users"], [4, 4, 0])


def test_a_bad_shape_option_stops_locust_at_start(tmp_path: Path) -> None:
    run = run_locust(
        SHAPED, tmp_path, headless("http://127.0.0.1:9", 1, "2s", "--ai-steps", "10,x"), with_reports=False
    )
    assert run.returncode == 2
    assert "argument --ai-steps: a step must be a whole number of users, got 'x'" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_shape_with_no_plan_stops_locust_at_start(tmp_path: Path) -> None:
    args = ["--headless", "--host", "http://127.0.0.1:9"]
    run = run_locust(SHAPED, tmp_path, args, env={"TEST_SHAPE": "spike"}, with_reports=False)
    assert run.returncode == 2
    assert "locust-aiapi: error: Shape has no spike: set 'spike' or pass --ai-spike" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_distributed_sweep_aggregates_per_step_on_the_master(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SHAPE", "sweep")  # passed on to the master and the workers
    with MockProcess(FAST_MOCK) as mock:
        master_args = ["--ai-steps", "2,6", "--ai-step-duration", "3s", "--ai-no-metrics"]
        run = start_distributed(SHAPED, tmp_path, mock.url, 1, "30s", workers=2, master_args=master_args)
        assert run.wait(60) == 0, run.log("master")[-3000:]
    summary = run.summary
    phases = summary["phases"]
    assert [p["label"] for p in phases] == ["2 users", "6 users"]
    assert sum(p["count"] for p in phases) == summary["total"]["count"] == len(run.worker_records())
    # Locust ticks shapes once a second (and a master's start() blocks while workers spawn), so
    # phases last their planned time to within a second or so: compare request rates, not counts
    rates = [p["count"] / p["duration_s"] for p in phases]
    assert rates[1] > 2 * rates[0], phases
    assert sum(p["duration_s"] for p in phases) == pytest.approx(6.0, abs=1.5)
    assert summary["workers"]["reported"] == 2


# --- per-phase aggregation ------------------------------------------------------------------------


def chat_record(start_s: float) -> RequestRecord:
    times = [start_s + 0.1 + 0.01 * k for k in range(5)]
    return RequestRecord(
        name="chat", kind=RequestKind.CHAT, model="m", streamed=True, start_epoch_s=1e9 + start_s,
        start_s=start_s, end_s=times[-1], first_token_s=times[0], last_token_s=times[-1], output_tokens=5,
    )  # fmt: skip


def test_requests_count_in_the_phase_they_started_in() -> None:
    shape_side, worker = PhaseAggregator(), PhaseAggregator()
    for index, at in [(0, 10.0), (1, 20.0), (2, 30.0)]:
        assert shape_side.enter(index, at)
        shape_side.describe(PhaseInfo(index, f"step {index}", 2 * (index + 1), 2.0, 10.0, at))
        worker.enter(index, at + 100.0)  # the worker's own clock, as its messages arrive
    assert not worker.enter(2, 131.0)  # already there
    for start in (5.0, 12.0, 19.9, 20.0, 35.0):
        shape_side.add(chat_record(start))
    for start in (115.0, 125.0, 126.0):
        worker.add(chat_record(start))
    payload = worker.take_report()
    assert payload is not None and worker.take_report() is None
    shape_side.absorb(json.loads(json.dumps(payload)))
    rows = shape_side.report(now_s=45.0)
    assert [(r["label"], r["count"], r["target_users"]) for r in rows] == [
        ("step 0", 3, 2),
        ("step 1", 3, 4),
        ("step 2", 1, 6),
    ]  # the request at 5.0 s started before any phase: in no row
    assert [r["duration_s"] for r in rows] == [10.0, 10.0, 15.0]
    assert [r["start_offset_s"] for r in rows] == [0.0, 10.0, 20.0]


def test_a_new_test_keeps_only_the_phase_just_entered() -> None:
    phases = PhaseAggregator()
    phases.enter(2, 5.0)
    phases.describe(PhaseInfo(2, "old", 1, 1.0, 1.0, 5.0))
    phases.enter(0, 50.0)
    phases.describe(PhaseInfo(0, "first", 2, 2.0, 10.0, 50.0))
    phases.add(chat_record(51.0))
    phases.reset_data(now_s=50.5)
    assert phases.stats == {} and list(phases.info) == [0] and phases.info[0].entered_s == 50.5
    phases.add(chat_record(52.0))
    assert [r["count"] for r in phases.report(now_s=60.0)] == [1]
    phases.clear()
    assert phases.current is None and phases.report(60.0) == []
