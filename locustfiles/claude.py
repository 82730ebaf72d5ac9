"""Claude through Anthropic's Messages API: plain answers and answers with extended thinking.

Points at the local mock server (which speaks ``/v1/messages``) unless you pass ``--host``:

    locust -f locustfiles/claude.py                                    # the mock: locust-aiapi-mock
    ANTHROPIC_API_KEY=sk-ant-... locust -f locustfiles/claude.py --host https://api.anthropic.com

TTFT is at the first text, thinking or tool-input delta; TTFC (time to first visible content) at
the first text delta, so on the "thinking" requests the gap between the two is the thinking time.
"""

from __future__ import annotations

import os
import random

from locust import between, task

from locust_aiapi import AIChatUser

PROMPTS = [
    "When will my order ship?",
    "Recommend a birthday gift for my parents.",
    "How do returns work, and how long do they take?",
    "How does this phone compare with the other one?",
]
THINKING = {"type": "enabled", "budget_tokens": 1024}  # the API's minimum budget


class ClaudeUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    dialect = "anthropic"
    api_key = os.environ.get("ANTHROPIC_API_KEY")
    model = "claude-sonnet-4-5"
    wait_time = between(1, 3)
    max_tokens = 500
    temperature = None  # extended thinking accepts no temperature other than the default

    @task(3)
    def answer(self) -> None:
        self.chat(random.choice(PROMPTS), name="chat")

    @task(1)
    def think_then_answer(self) -> None:
        # budget_tokens must be below max_tokens
        self.chat(random.choice(PROMPTS), name="chat-thinking", thinking=THINKING, max_tokens=2048)
