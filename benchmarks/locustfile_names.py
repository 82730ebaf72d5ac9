"""Benchmark user: streams back to back, spreading its requests over ``BENCH_NAMES`` request names.

Many names make a scrape do real work: one labelled series per name in every metric family.
"""

from __future__ import annotations

import itertools
import os

from locust import constant, task

from locust_aiapi import AIChatUser

_NAMES = int(os.environ.get("BENCH_NAMES", "1"))
_counter = itertools.count()


class ManyNamesChatUser(AIChatUser):
    wait_time = constant(0)
    max_tokens = None

    @task
    def stream_chat(self) -> None:
        self.chat("Write a short product description.", name=f"chat-{next(_counter) % _NAMES}")
