"""Collector pauses (``_gc_pauses``): the objects alive once users are spawned and running are frozen,
cycles that stopped users leave are still collected, and everything is given back at the test's stop.
The real collector, and a real Locust run against the mock."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from locust_aiapi._gc_pauses import YOUNG_THRESHOLD, GcFreezer
from locust_aiapi.mock import MockProcess

from ._support import TEST_LOCUSTFILES, headless, run_locust


class _Node:
    pass


def garbage_cycle() -> weakref.ref[_Node]:
    """A reference cycle nobody holds: only the collector frees it."""
    node = _Node()
    node.self = node  # type: ignore[attr-defined]
    return weakref.ref(node)


@pytest.fixture
def freezer() -> Iterator[GcFreezer]:
    gc.collect()
    made = GcFreezer()
    yield made
    made.stopped()
    gc.unfreeze()


def test_a_spawn_freezes_what_is_alive_and_more_users_collect_nothing(freezer: GcFreezer) -> None:
    cycle = garbage_cycle()
    freezer.spawned(10)
    assert freezer.frozen and gc.get_freeze_count() > 0
    gc.collect()
    assert cycle() is not None  # frozen: out of the collector's reach
    freezer.spawned(20)
    assert cycle() is not None


def test_fewer_users_give_back_and_collect_the_cycles_stopped_users_left(freezer: GcFreezer) -> None:
    freezer.spawned(10)
    left_by_stopped_users = garbage_cycle()
    freezer.spawned(20)  # frozen with the new users
    gc.collect()
    assert left_by_stopped_users() is not None
    freezer.spawned(5)
    assert left_by_stopped_users() is None


def test_a_small_decrease_or_a_second_one_within_a_minute_collects_nothing() -> None:
    """A shape that lowers the count a user a second must not pause every stream each second."""
    now = [1000.0]
    freezer = GcFreezer(clock=lambda: now[0])
    gc.collect()
    try:
        freezer.spawned(20)
        first = garbage_cycle()
        freezer.spawned(18)  # above three quarters of 20
        gc.collect()
        assert first() is not None
        freezer.spawned(10)  # at most three quarters: collected first
        assert first() is None
        second = garbage_cycle()
        freezer.spawned(20)
        now[0] += 30.0
        freezer.spawned(5)  # well down again, but within a minute of the last collection
        gc.collect()
        assert second() is not None
        now[0] += 31.0
        freezer.spawned(4)
        assert second() is None
    finally:
        freezer.stopped()
        gc.unfreeze()


def test_as_many_ended_requests_as_users_freeze_again(freezer: GcFreezer) -> None:
    freezer.spawned(3)
    connection_objects = garbage_cycle()  # made at each user's first request
    freezer.request_ended()
    freezer.request_ended()
    gc.collect()
    assert connection_objects() is None  # not frozen yet: collected
    connection_objects = garbage_cycle()
    freezer.request_ended()  # the third: every user had about one request
    gc.collect()
    assert connection_objects() is not None
    freezer.request_ended()  # later requests change nothing
    later = garbage_cycle()
    gc.collect()
    assert later() is None


def test_young_collections_wait_for_more_objects_while_frozen(freezer: GcFreezer) -> None:
    cpython = gc.get_threshold()
    assert cpython[0] < YOUNG_THRESHOLD
    freezer.spawned(10)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *cpython[1:])
    freezer.spawned(20)
    freezer.stopped()
    assert gc.get_threshold() == cpython
    try:
        for own in (50_000, 0):  # a user's own: higher, or automatic collection off: kept
            gc.set_threshold(own, *cpython[1:])
            freezer.spawned(10)
            assert gc.get_threshold()[0] == own
            freezer.stopped()
            assert gc.get_threshold()[0] == own
        gc.set_threshold(*cpython)
        freezer.spawned(10)
        gc.set_threshold(2_000, *cpython[1:])  # set during the run: not undone at the stop
        freezer.stopped()
        assert gc.get_threshold()[0] == 2_000
    finally:
        gc.set_threshold(*cpython)


def test_the_stop_gives_everything_back(freezer: GcFreezer) -> None:
    cycle = garbage_cycle()
    freezer.spawned(10)
    freezer.stopped()
    assert not freezer.frozen and gc.get_freeze_count() == 0
    gc.collect()
    assert cycle() is None


@pytest.mark.parametrize("freeze", [True, False])
def test_a_locust_run_freezes_its_users_unless_told_not_to(tmp_path: Path, freeze: bool) -> None:
    probe = tmp_path / "frozen.txt"
    extra = [] if freeze else ["--ai-no-gc-freeze"]
    with MockProcess(["--ttft-ms", "20", "--itl-ms", "5", "--output-tokens", "5"]) as mock:
        run = run_locust(
            TEST_LOCUSTFILES / "gc_probe_chat.py",
            tmp_path,
            headless(mock.url, 5, "3s", "--stop-timeout", "5", "--ai-no-metrics", *extra),
            env={"TEST_GC_PROBE_FILE": str(probe)},
            with_reports=False,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [tuple(map(int, line.split())) for line in probe.read_text().splitlines()]
    assert len(rows) > 20
    frozen, young = [row[0] for row in rows], {row[1] for row in rows[-10:]}
    if freeze:
        assert min(frozen[-10:]) > 10_000  # the users, their connections, the modules: all frozen
        assert young == {YOUNG_THRESHOLD}
    else:
        assert max(frozen) == 0
        assert young == {gc.get_threshold()[0]}  # CPython's own (this process has the same)


def test_a_ramp_down_a_user_a_second_runs_no_full_collection_each_second(tmp_path: Path) -> None:
    log = tmp_path / "gc.txt"
    with MockProcess(["--ttft-ms", "20", "--itl-ms", "10", "--output-tokens", "20"]) as mock:
        run = run_locust(
            TEST_LOCUSTFILES / "gc_rampdown_chat.py",
            tmp_path,
            ["--headless", "--host", mock.url, "--ai-no-metrics", "--stop-timeout", "2"],
            env={"TEST_GC_LOG": str(log)},
            with_reports=False,
            timeout_s=60,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    full_collections = [line for line in log.read_text().splitlines() if line]
    assert len(full_collections) <= 3, full_collections  # 11 before: one at each step down
