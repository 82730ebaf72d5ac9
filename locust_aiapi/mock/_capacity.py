"""Bounded generation slots with a strict FIFO queue, like an inference server's scheduler."""

from __future__ import annotations

import time
from collections import deque
from types import TracebackType

from gevent.event import Event


class QueueFullError(Exception):
    """Every slot is busy and the queue is at its limit."""


class Capacity:
    """`limit` concurrent generations (0 = unlimited); at most `max_queue` waiters (0 = unlimited).

    A released slot is handed straight to the oldest waiter, so a newcomer can never overtake the
    queue (a plain semaphore lets a running greenlet barge in before the woken waiter runs).
    """

    def __init__(self, limit: int, max_queue: int) -> None:
        self._limit = limit
        self._max_queue = max_queue
        self._active = 0
        self._waiters: deque[Slot] = deque()

    @property
    def active(self) -> int:
        return self._active

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def admit(self) -> Slot:
        """Take a free slot or a place in the queue, without waiting; raises QueueFullError."""
        if self._limit == 0 or (self._active < self._limit and not self._waiters):
            self._active += 1
            return Slot(self, queued=False)
        if self._max_queue and len(self._waiters) >= self._max_queue:
            raise QueueFullError
        slot = Slot(self, queued=True)
        self._waiters.append(slot)
        return slot

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft()._grant()  # the slot passes on; `_active` is unchanged
        else:
            self._active -= 1

    def _cancel(self, slot: Slot) -> None:
        self._waiters.remove(slot)


class Slot:
    """A place in line; use as a context manager so the slot is always given back."""

    def __init__(self, capacity: Capacity, *, queued: bool) -> None:
        self._capacity = capacity
        self._granted = Event()
        self.granted_s = 0.0  # perf_counter() at hand-over from the queue; 0.0 if never queued
        if not queued:
            self._granted.set()

    def wait(self) -> float:
        """Block until the slot is ours; returns `granted_s`."""
        self._granted.wait()
        return self.granted_s

    def _grant(self) -> None:
        self.granted_s = time.perf_counter()
        self._granted.set()

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._granted.is_set():
            self._capacity._release()
        else:
            self._capacity._cancel(self)
