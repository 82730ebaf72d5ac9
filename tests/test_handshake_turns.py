"""The handshake turn: one step at a time, later steps before first steps, and waiters that die.

Real greenlets on the real hub; what each step did is recorded in the order it got the turn. The memory
this order saves over HTTPS is measured by ``tests/test_worker_scale.py`` and ``benchmarks/worker_scale.py``.
"""

from __future__ import annotations

import time

import gevent
import gevent.event
import pytest

from locust_aiapi._handshake_turns import HandshakeTurns


def _step(turns: HandshakeTurns, order: list[str], name: str, later: bool, hold_s: float = 0.0) -> None:
    with turns.turn(later):
        order.append(name)
        gevent.sleep(hold_s)  # others may run meanwhile, but none takes the turn
        order.append(name + " done")


def test_a_later_step_gets_the_turn_before_first_steps_that_waited_longer() -> None:
    turns, order = HandshakeTurns(), []
    holder = gevent.spawn(_step, turns, order, "A", False, 0.05)
    gevent.sleep(0)
    firsts = [gevent.spawn(_step, turns, order, name, False) for name in ("B", "C")]
    gevent.sleep(0.01)
    later = gevent.spawn(_step, turns, order, "D", True)
    gevent.sleep(0.01)
    assert turns.waiting == (2, 1)
    gevent.joinall([holder, *firsts, later], timeout=5, raise_error=True)
    assert order == ["A", "A done", "D", "D done", "B", "B done", "C", "C done"]
    assert turns.waiting == (0, 0) and not turns._busy


def test_one_step_at_a_time_even_when_steps_sleep() -> None:
    turns, order = HandshakeTurns(), []
    jobs = [gevent.spawn(_step, turns, order, str(n), n % 2 == 1, 0.005) for n in range(8)]
    gevent.joinall(jobs, timeout=5, raise_error=True)
    assert all(order[i + 1] == order[i] + " done" for i in range(0, len(order), 2))


def test_a_waiter_killed_before_its_turn_leaves_the_queue() -> None:
    turns, order = HandshakeTurns(), []
    holder = gevent.spawn(_step, turns, order, "A", False, 0.05)
    gevent.sleep(0)
    doomed = gevent.spawn(_step, turns, order, "B", True)
    after = gevent.spawn(_step, turns, order, "C", False)
    gevent.sleep(0.01)
    doomed.kill()
    assert turns.waiting == (1, 0)
    gevent.joinall([holder, after], timeout=5, raise_error=True)
    assert order == ["A", "A done", "C", "C done"]
    assert not turns._busy


def test_a_waiter_killed_once_handed_the_turn_passes_it_on() -> None:
    turns, order = HandshakeTurns(), []
    gate = gevent.event.Event()

    def holder() -> None:
        with turns.turn(False):
            gate.wait()
            doomed.kill(block=False)  # its kill runs before the hand-over is delivered
        order.append("A released")

    first = gevent.spawn(holder)
    gevent.sleep(0)
    doomed = gevent.spawn(_step, turns, order, "B", False)
    after = gevent.spawn(_step, turns, order, "C", False)
    gevent.sleep(0.01)
    gate.set()
    gevent.joinall([first, doomed, after], timeout=5)
    assert after.successful(), after.exception
    assert "B" not in order and order[-2:] == ["C", "C done"]
    assert not turns._busy and turns.waiting == (0, 0)


@pytest.mark.parametrize("later", [False, True])
def test_an_idle_turn_is_taken_at_once(later: bool) -> None:
    turns = HandshakeTurns()
    with turns.turn(later):
        assert turns._busy
    assert not turns._busy


def test_a_wait_longer_than_its_timeout_raises_and_leaves_the_queue() -> None:
    turns, order = HandshakeTurns(), []
    holder = gevent.spawn(_step, turns, order, "A", False, 0.3)
    gevent.sleep(0)
    started_s = time.monotonic()
    with pytest.raises(TimeoutError), turns.turn(True, timeout_s=0.05):
        order.append("B")
    waited_s = time.monotonic() - started_s
    assert 0.04 < waited_s < 0.25 and turns.waiting == (0, 0)
    after = gevent.spawn(_step, turns, order, "C", False)
    gevent.joinall([holder, after], timeout=5, raise_error=True)
    assert order == ["A", "A done", "C", "C done"] and not turns._busy
