"""Collector pauses: once the users are spawned and running, what is alive is moved out of the
collector's reach.

CPython's full collection walks every tracked object, and while it runs no stream is read: every read
in flight comes in that much later (client lag), and a token that arrives meanwhile shares a read with
the next one (a later TTFT stamp). Most tracked objects belong to the users (session, cookie jar,
greenlet) and to their connections (client, pool, headers), made at their first request. So
``gc.freeze()`` runs when a spawn completes and again once as many requests as there are users have
ended since; a full collection then walks only the requests in flight. One ``gc.collect()`` in the
steady state, streaming (``benchmarks/gc_pauses.py``): 80 -> 17 ms at 1,000 users, 216 -> 67 ms at 3,000.

Frozen objects are freed as usual when their last reference goes; only reference cycles among them
wait (a request leaves none). Stopped users leave such cycles, so when a spawn completes at fewer users
than were frozen, the frozen objects are first given back and collected (one pause, at a change of
load), and ``test_stop`` gives them all back. ``--ai-no-gc-freeze`` leaves the collector alone.
"""

from __future__ import annotations

import gc

__all__ = ["FREEZER", "GcFreezer"]


class GcFreezer:
    """Freezes at each completed spawn (collecting first when the user count went down), and again after
    as many ended requests as users."""

    __slots__ = ("_frozen_users", "_requests_to_go")

    def __init__(self) -> None:
        self._frozen_users: int | None = None
        self._requests_to_go = 0

    @property
    def frozen(self) -> bool:
        return self._frozen_users is not None

    def spawned(self, user_count: int) -> None:
        if self._frozen_users is not None and user_count < self._frozen_users:
            gc.unfreeze()
            gc.collect()
        gc.freeze()
        self._frozen_users = user_count
        self._requests_to_go = user_count

    def request_ended(self) -> None:
        """Once per request (cheap): the second freeze, when each user has had about one request."""
        if self._requests_to_go:
            self._requests_to_go -= 1
            if not self._requests_to_go and self._frozen_users is not None:
                gc.freeze()

    def stopped(self) -> None:
        self._requests_to_go = 0
        if self._frozen_users is not None:
            gc.unfreeze()
            self._frozen_users = None


FREEZER = GcFreezer()
"""The collector is the process's: one freezer for every environment in it."""
