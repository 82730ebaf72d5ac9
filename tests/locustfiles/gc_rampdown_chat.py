"""A streaming user under a shape that lowers the count one user per second (as Locust's wave and
ramp-down example shapes do); every full collection (generation 2) is logged with its duration."""

from __future__ import annotations

import gc
import os
import time

from locust import LoadTestShape, constant, events, task

from locust_aiapi import AIChatUser

_log: list[str] = []
_began: list[float] = []


def _on_gc(phase: str, info: dict) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        _began[:] = [time.perf_counter()]
    elif _began:
        _log.append(
            f"{time.time():.3f} {(time.perf_counter() - _began[0]) * 1e3:.2f} {info['collected']} "
            f"{gc.get_freeze_count()}"
        )


gc.callbacks.append(_on_gc)


@events.quitting.add_listener
def _write(**_: object) -> None:
    with open(os.environ["TEST_GC_LOG"], "w") as out:
        out.write("\n".join(_log) + "\n")


class Chat(AIChatUser):
    wait_time = constant(0.05)
    max_tokens = None

    @task
    def ask(self) -> None:
        self.chat("How long does shipping take?", name="chat")


class RampDown(LoadTestShape):
    """40 users for 4 s, then one user fewer each second down to 30, then stop (15 s)."""

    def tick(self):  # type: ignore[no-untyped-def]
        t = self.get_run_time()
        if t < 4:
            return 40, 100
        if t < 15:
            return 40 - int(t - 3), 100
        return None
