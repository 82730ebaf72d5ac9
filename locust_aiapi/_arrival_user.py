"""``ArrivalRateUser``: an :class:`AIChatUser` whose iterations start on the open model's schedule."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from ._extras import arrival_scheduler
from ._records import RequestRecord
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
        self._intended_start_s: float | None = None
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
        scheduler = arrival_scheduler(self.environment, type(self).arrival_rate_per_s)
        self._intended_start_s = scheduler.take()

    def _report(self, record: RequestRecord) -> None:
        intended = self._intended_start_s
        if intended is not None:
            self._intended_start_s = None
            # count the request from the intended start: its late start becomes part of every latency
            late_s = max(0.0, record.start_s - intended)
            record.start_s -= late_s
            record.start_epoch_s -= late_s
            arrival_scheduler(self.environment, type(self).arrival_rate_per_s).confirm_start(late_s)
        elif not self._warned_unpaced:
            self._warned_unpaced = True
            log.debug("locust-aiapi: %s made a request outside a scheduled start", type(self).__name__)
        super()._report(record)
