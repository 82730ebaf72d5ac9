"""An open-model chat user (ArrivalRateUser) and its pool shape, for the arrival-rate tests."""

from __future__ import annotations

from locust import task

from locust_aiapi import ArrivalRateUser, ConstantArrivalRateShape


class OpenChatUser(ArrivalRateUser):
    max_tokens = None

    @task
    def ask(self) -> None:
        self.chat("Is this in stock?", name="chat")


class Pool(ConstantArrivalRateShape):
    pass
