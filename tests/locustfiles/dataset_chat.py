"""A chat user that sends the next prompt of its source (--ai-dataset / --ai-prompt-tokens) each time."""

from __future__ import annotations

from locust import constant, task

from locust_aiapi import AIChatUser


class DatasetChatUser(AIChatUser):
    wait_time = constant(0.05)
    max_tokens = None
    prompts = ("fallback prompt",)

    @task
    def ask(self) -> None:
        self.chat(self.next_prompt())
