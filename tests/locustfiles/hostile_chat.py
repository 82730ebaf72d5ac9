"""Chat users for runs against hostile servers: ``TEST_STREAM=0`` asks for non-streamed answers, and
``TEST_FLOOD_HOST`` adds one more user that chats with that host (e.g. a server that floods)."""

from __future__ import annotations

import os
from typing import Any

from locust import constant, task

from locust_aiapi import AIChatUser


class ChatUser(AIChatUser):
    wait_time = constant(float(os.environ.get("TEST_WAIT_S", "0.05")))
    max_tokens = None
    stream = os.environ.get("TEST_STREAM", "1") == "1"

    @task
    def ask(self) -> None:
        self.chat("How long does shipping take?", name="chat")


if os.environ.get("TEST_FLOOD_HOST"):

    class FloodUser(AIChatUser):
        fixed_count = 1
        wait_time = constant(0.05)
        max_tokens = None

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            self.host = os.environ["TEST_FLOOD_HOST"]

        @task
        def ask(self) -> None:
            self.chat("Flood me.", name="flood")
