"""A quick chat user under one of the package's load shapes, chosen by TEST_SHAPE (options set the plan)."""

from __future__ import annotations

import os

from locust import constant, task

from locust_aiapi import AIChatUser, SpikeShape, StagesShape, StepSweepShape


class QuickChatUser(AIChatUser):
    wait_time = constant(float(os.environ.get("TEST_WAIT_S", "0.05")))
    max_tokens = None

    @task
    def ask(self) -> None:
        self.chat("How long does shipping take?", name="chat")


_SHAPES = {"stages": StagesShape, "spike": SpikeShape, "sweep": StepSweepShape}


class Shape(_SHAPES[os.environ.get("TEST_SHAPE", "sweep")]):  # type: ignore[misc]
    pass
