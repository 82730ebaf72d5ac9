"""Collector pauses: once the users are spawned and running, what is alive is moved out of the
collector's reach.

CPython's full collection walks every tracked object, and while it runs no stream is read: every read
in flight comes in that much later (client lag), and a token that arrives meanwhile shares a read with
the next one (a later TTFT stamp). Most tracked objects belong to the users (session, cookie jar,
greenlet) and to their connections (client, pool, headers), made at their first request. So
``gc.freeze()`` runs when a spawn completes and again once as many requests as there are users have
ended since; a full collection then walks only the requests in flight. One ``gc.collect()`` in the
steady state, streaming (``benchmarks/gc_pauses.py``): 103 -> 14 ms at 1,000 users, 205 -> 27 ms at 3,000.

Frozen objects are freed as usual when their last reference goes; only reference cycles among them
wait (a request leaves none). Stopped users leave such cycles, so when a spawn completes at three
quarters or less of the most users since the last collection, the frozen objects are given back and
collected first: one pause at a change of load, at most once a minute (a shape that lowers the count a
user a second would otherwise pause every stream each second).

While frozen, a young collection waits for ``YOUNG_THRESHOLD`` new objects instead of CPython's 700:
what a request allocates is nearly all freed by its reference count before a collection sees it, so
ten times fewer collections walk about the same live objects each (Locust CPU per streamed chunk -1.5
to -2.5 %, paired ``benchmarks/paired_cost.py`` runs; client lag p99 no higher). A threshold of 0
(automatic collection off) or above ours is left alone.

``test_stop`` gives everything back, and the thresholds unless they were changed meanwhile.
``--ai-no-gc-freeze`` leaves the collector alone. On a worker the count is its own users'.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from typing import Final

__all__ = ["COLLECT_AT_FRACTION", "FREEZER", "MIN_COLLECTION_INTERVAL_S", "YOUNG_THRESHOLD", "GcFreezer"]

# a completed spawn at this share (or less) of the most users since the last collection collects first
COLLECT_AT_FRACTION: Final = 0.75
MIN_COLLECTION_INTERVAL_S: Final = 60.0
# new objects between young collections while frozen (CPython's default is 700)
YOUNG_THRESHOLD: Final = 10_000


class GcFreezer:
    """Freezes at each completed spawn (collecting first when the user count went well down, at most
    once a minute), and again after as many ended requests as users."""

    __slots__ = ("_clock", "_collected_s", "_most_users", "_requests_to_go", "_thresholds")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._most_users: int | None = None  # the most users since the last collection; None: not frozen
        self._collected_s = -math.inf
        self._requests_to_go = 0
        self._thresholds: tuple[int, ...] | None = None  # CPython's, while ours are set

    @property
    def frozen(self) -> bool:
        return self._most_users is not None

    def spawned(self, user_count: int) -> None:
        most = self._most_users
        if most is not None and user_count <= most * COLLECT_AT_FRACTION:
            now_s = self._clock()
            if now_s - self._collected_s >= MIN_COLLECTION_INTERVAL_S:
                gc.unfreeze()
                gc.collect()
                self._collected_s, most = now_s, user_count
        gc.freeze()
        thresholds = gc.get_threshold()
        if self._thresholds is None and 0 < thresholds[0] < YOUNG_THRESHOLD:  # 0: collection is off
            self._thresholds = thresholds
            gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
        self._most_users = user_count if most is None else max(most, user_count)
        self._requests_to_go = user_count

    def request_ended(self) -> None:
        """Once per request (cheap): the second freeze, when each user has had about one request."""
        if self._requests_to_go:
            self._requests_to_go -= 1
            if not self._requests_to_go and self._most_users is not None:
                gc.freeze()

    def stopped(self) -> None:
        self._requests_to_go = 0
        if self._most_users is not None:
            gc.unfreeze()
            self._most_users = None
        if self._thresholds is not None:
            if gc.get_threshold()[0] == YOUNG_THRESHOLD:  # not set by someone else meanwhile
                gc.set_threshold(*self._thresholds)
            self._thresholds = None


FREEZER = GcFreezer()
"""The collector is the process's: one freezer for every environment in it."""
