"""A user with no host, to check the error a user gets without --host."""

from __future__ import annotations

from locust import task

from locust_aiapi import AIChatUser


class NoHostUser(AIChatUser):
    @task
    def ask(self) -> None:
        self.chat("hi")
