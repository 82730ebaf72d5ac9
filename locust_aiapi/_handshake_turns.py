"""One TLS handshake step at a time per process, and a handshake under way goes before new ones.

Why the order matters (see ``_tls`` for why steps take turns at all). Taken first come, first served,
a spawn burst's turns put each handshake's second step behind the first steps of every connection
opened meanwhile: most connections then sit between their ClientHello and the server's answer being
processed, each holding OpenSSL's handshake buffers (~40 KiB), and those blocks, freed later, stay
spread over the heap among long-lived objects. Here a waiting later step is handed the turn before
any first step: a handshake, once begun, finishes as soon as its server has answered. The order of
first steps among themselves, and the throughput, stay as they were; no ClientHello waits longer than
the turns ahead of it (a cap on handshakes under way, tried first, held ClientHellos back after the TCP
connect until the mock's 10 s handshake timeout closed 828 of 10,000 connections).

Measured (``benchmarks/worker_scale.py --tls``, resident memory per streaming user, peak in brackets):
10,000 users 63.1 (67.3) -> 53.9 (60.3) KiB, 5,000 62.6 (67.0) -> 54.5 (61.1), 0 failures, spawned as
fast; 1,500 users started in one second (``tests/test_worker_scale.py``) peak 79.1 -> 61.7 KiB.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator

import gevent
from gevent.hub import Waiter, get_hub

__all__ = ["HandshakeTurns"]


class _Ticket:
    __slots__ = ("handed", "waiter")

    def __init__(self) -> None:
        self.waiter: Waiter = Waiter()
        self.handed = False


class HandshakeTurns:
    """A lock for one handshake step; ``turn(later=True)`` (a handshake's second or later step) is
    handed the lock before every ``turn(later=False)`` waiting. A wait for the turn longer than
    ``timeout_s`` raises ``TimeoutError`` (the handshake's own deadline: a long queue of turns must not
    let a handshake run past the connection timeout the user set)."""

    def __init__(self) -> None:
        self._busy = False
        self._first: collections.deque[_Ticket] = collections.deque()
        self._later: collections.deque[_Ticket] = collections.deque()

    @property
    def waiting(self) -> tuple[int, int]:
        """(first steps, later steps) waiting for the turn."""
        return len(self._first), len(self._later)

    @contextlib.contextmanager
    def turn(self, later: bool, timeout_s: float | None = None) -> Iterator[None]:
        self._acquire(self._later if later else self._first, timeout_s)
        try:
            yield
        finally:
            self._release()

    def _acquire(self, queue: collections.deque[_Ticket], timeout_s: float | None) -> None:
        if not self._busy:
            self._busy = True
            return
        ticket = _Ticket()
        queue.append(ticket)
        try:
            with gevent.Timeout(timeout_s, TimeoutError("timed out waiting for the TLS handshake's turn")):
                ticket.waiter.get()
        except BaseException:  # killed or timed out while waiting: not ours, or pass it on
            if ticket.handed:
                self._release()
            else:
                queue.remove(ticket)
            raise

    def _release(self) -> None:
        queue = self._later or self._first
        if not queue:
            self._busy = False
            return
        ticket = queue.popleft()
        ticket.handed = True  # the lock stays taken: it is the ticket holder's now
        get_hub().loop.run_callback(ticket.waiter.switch, None)
