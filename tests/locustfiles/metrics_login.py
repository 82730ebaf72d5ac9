"""``--web-login`` with HTTP basic auth (user ``scraper``, password ``TEST_METRICS_PASSWORD``).

Locust leaves authentication to the locustfile (a Flask-Login ``LoginManager``); a ``request_loader``
that accepts basic auth is what lets Prometheus (``basic_auth`` in its scrape config) read /metrics.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Request
from flask_login import UserMixin
from locust import constant, events, task

from locust_aiapi import AIChatUser

USERNAME = "scraper"


class Scraper(UserMixin):
    def __init__(self) -> None:
        self.id = USERNAME


class IdleChatUser(AIChatUser):
    wait_time = constant(1)

    @task
    def ask(self) -> None:
        self.chat("hi", name="chat")


def _from_basic_auth(request: Request) -> Scraper | None:
    auth = request.authorization
    password = os.environ["TEST_METRICS_PASSWORD"]
    if auth is not None and auth.username == USERNAME and auth.password == password:
        return Scraper()
    return None


@events.init.add_listener
def _on_init(web_ui: Any = None, **_: Any) -> None:
    if web_ui is None:
        return
    web_ui.app.secret_key = os.urandom(16)
    web_ui.login_manager.user_loader(lambda user_id: Scraper() if user_id == USERNAME else None)
    web_ui.login_manager.request_loader(_from_basic_auth)
