"""The legacy Completions API (``POST /v1/completions`` with a ``prompt``): what vLLM, SGLang and TGI
benchmarks send. Points at the local mock server unless you pass ``--host``:

    locust -f locustfiles/completions.py                                  # the mock: locust-aiapi-mock
    locust -f locustfiles/completions.py --host http://my-vllm:8000 --ai-model Qwen/Qwen2.5-7B-Instruct

A fixed-length prompt and ``ignore_eos`` (vLLM's) keep every request the same size, as in
vLLM's own serving benchmark.
"""

from __future__ import annotations

from locust import constant, task

from locust_aiapi import AIChatUser

PROMPT = "Summarise the return policy of an online shop in three sentences. " * 8


class CompletionsUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    dialect = "openai-completions"
    model = "Qwen/Qwen2.5-7B-Instruct"
    wait_time = constant(0)
    max_tokens = 128
    temperature = 0.0

    @task
    def complete(self) -> None:
        self.chat(PROMPT, name="completions", ignore_eos=True)
