"""Replays the conversations of its source (turns from --ai-dataset), 10 ms of think time between turns."""

from __future__ import annotations

from locust import constant, task

from locust_aiapi import AIChatUser


class ConversationChatUser(AIChatUser):
    wait_time = constant(0.05)
    max_tokens = None

    @task
    def replay(self) -> None:
        script = self.next_conversation()
        self.conversation(system=script.system, think_time_s=0.01).replay(script, name="conversation")
