"""Collector pauses (``_gc_pauses``): the objects alive once users are spawned and running are frozen,
cycles that stopped users leave are still collected, and everything is given back at the test's stop.
The real collector, and a real Locust run against the mock."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from locust_aiapi._gc_pauses import GcFreezer
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
    frozen = [int(line) for line in probe.read_text().split()]
    assert len(frozen) > 20
    if freeze:
        assert min(frozen[-10:]) > 10_000  # the users, their connections, the modules: all frozen
    else:
        assert max(frozen) == 0
