"""``ArrivalRateUser``: an :class:`AIChatUser` whose iterations start on the open model's schedule."""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from ._arrival import ArrivalScheduler
from ._run_state import attach
from ._users import AIChatUser

__all__ = ["ArrivalRateUser"]

log = logging.getLogger("locust_aiapi")


class ArrivalRateUser(AIChatUser):
    """Open model: each iteration (one task) starts when the process's scheduler says so.

    The pool is the users Locust runs (``-u``, or :class:`ConstantArrivalRateShape`); an idle user
    waits for the next scheduled start instead of a ``wait_time`` (do not set one). The first AI
    request of each iteration is measured from the iteration's *intended* start. The rate is
    ``--ai-arrival-rate`` (starts per second for the whole test, across workers), else
    ``arrival_rate_per_s``. If you override ``on_start``, call ``super().on_start()`` last: it waits
    for the first start.
    """

    abstract = True

    arrival_rate_per_s: ClassVar[float | None] = None
    """Starts per second when ``--ai-arrival-rate`` is not given."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._pending_start_s: float | None = None
        self._warned_unpaced = False

    def on_start(self) -> None:
        # like Locust's own wait(): a user waiting for its start can be stopped at once
        self._state = LOCUST_STATE_WAITING
        self._await_start()
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        self._state = LOCUST_STATE_RUNNING

    def wait_time(self) -> float:
        self._await_start()
        return 0.0

    def _await_start(self) -> None:
        self._pending_start_s = self._scheduler().take()

    def _scheduler(self) -> ArrivalScheduler:
        return attach(self.environment).arrival_scheduler(type(self).arrival_rate_per_s)

    def _intended_start_s(self) -> float | None:
        """The first request of an iteration starts at the iteration's intended time: its late start
        becomes part of every latency (no coordinated omission)."""
        intended, self._pending_start_s = self._pending_start_s, None
        if intended is None:
            if not self._warned_unpaced:
                self._warned_unpaced = True
                log.debug("locust-aiapi: %s made a request outside a scheduled start", type(self).__name__)
            return None
        self._scheduler().confirm_start(max(0.0, time.perf_counter() - intended))
        return intended
