"""A streaming chat user whose master (or local process) lingers before it exits.

Prometheus scrapes once per ``scrape_interval``: lingering ``TEST_LINGER_S`` seconds at the end keeps
/metrics up until it has scraped the final state, which is what the end-to-end tests compare with the
JSON summary. The listener goes on ``quitting`` from ``init`` so it runs before the exporter's own
``quitting`` listener stops the server (``quitting`` fires in reverse order of registration).
"""

from __future__ import annotations

import os
from typing import Any

import gevent
from locust import constant, events, task
from locust.runners import WorkerRunner

from locust_aiapi import AIChatUser


class LingeringChatUser(AIChatUser):
    wait_time = constant(float(os.environ.get("TEST_WAIT_S", "0.05")))
    max_tokens = None

    @task
    def ask(self) -> None:
        self.chat("How long does shipping take?", name="chat")


def _linger(**_: Any) -> None:
    gevent.sleep(float(os.environ.get("TEST_LINGER_S", "0")))


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        environment.events.quitting.add_listener(_linger)
