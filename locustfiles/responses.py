"""OpenAI's Responses API (``POST /v1/responses``): plain answers and answers with a reasoning summary.

Points at the local mock server (which speaks ``/v1/responses``) unless you pass ``--host``:

    locust -f locustfiles/responses.py                                   # the mock: locust-aiapi-mock
    OPENAI_API_KEY=sk-... locust -f locustfiles/responses.py --host https://api.openai.com --ai-model o4-mini

TTFT is at the first output-text, refusal, reasoning or tool-argument delta (``response.created``
is not a token); TTFC at the first output-text delta, so with a reasoning summary the gap between
the two is the time spent reasoning aloud.
"""

from __future__ import annotations

import random

from locust import between, task

from locust_aiapi import AIChatUser

PROMPTS = [
    "When will my order ship?",
    "Recommend a birthday gift for my parents.",
    "How do returns work, and how long do they take?",
    "Are there student discounts?",
]
REASONING = {"effort": "low", "summary": "auto"}  # reasoning models only (o-series, GPT-5)


class ResponsesUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    dialect = "openai-responses"
    model = "gpt-4.1"
    wait_time = between(1, 3)
    max_tokens = 500  # sent as max_output_tokens
    temperature = None

    @task(3)
    def answer(self) -> None:
        self.chat(random.choice(PROMPTS), name="responses")

    @task(1)
    def reason_then_answer(self) -> None:
        self.chat(random.choice(PROMPTS), name="responses-reasoning", reasoning=REASONING)
