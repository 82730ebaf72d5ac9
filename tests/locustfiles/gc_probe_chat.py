"""A streaming chat user that writes how many objects the collector has frozen, and its young
generation's threshold, after each request."""

from __future__ import annotations

import gc
import os

from locust import constant, task

from locust_aiapi import AIChatUser


class GcProbeUser(AIChatUser):
    wait_time = constant(0.05)
    max_tokens = None

    @task
    def ask(self) -> None:
        self.chat("How long does shipping take?", name="chat")
        with open(os.environ["TEST_GC_PROBE_FILE"], "a") as probe:
            probe.write(f"{gc.get_freeze_count()} {gc.get_threshold()[0]}\n")
