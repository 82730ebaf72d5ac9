"""A streaming chat user that counts the calls it starts, for exactly-once checks."""

from __future__ import annotations

import os
from typing import Any

from locust import constant, events, task

from locust_aiapi import AIChatUser

started = {"chat": 0}


class CountingChatUser(AIChatUser):
    wait_time = constant(float(os.environ.get("TEST_WAIT_S", "0.05")))
    max_tokens = None

    @task
    def ask(self) -> None:
        started["chat"] += 1
        self.chat("How long does shipping take?", name="chat")


@events.test_stop.add_listener
def _write_started(environment: Any, **_: Any) -> None:
    path = os.environ.get("TEST_STARTED_FILE")
    if path:
        with open(path, "w") as file:
            file.write(str(started["chat"]))
