"""Azure OpenAI: chat streaming and embeddings on deployment URLs, the key in ``api-key``.

Points at the local mock server (which serves ``/openai/deployments/...``) unless you pass ``--host``:

    locust -f locustfiles/azure.py                                     # the mock: locust-aiapi-mock
    AZURE_OPENAI_API_KEY=... locust -f locustfiles/azure.py --host https://my-resource.openai.azure.com \\
        --ai-api-version 2024-10-21

The deployment is the model name (``--ai-model`` / ``model``); for another name, use
``dialect = AzureOpenAIDialect(deployment="...")``. Azure's content-filter chunks (empty ``choices``)
are not tokens, so TTFT is at the first generated token.
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
]


class AzureChatUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    dialect = "azure-openai"
    api_key = os.environ.get("AZURE_OPENAI_API_KEY")
    api_version = "2024-10-21"
    model = "gpt-4.1"  # the deployment's name
    embedding_model = "text-embedding-3-small"
    wait_time = between(1, 3)

    @task(3)
    def chat_completion(self) -> None:
        self.chat(random.choice(PROMPTS), name="chat")

    @task(1)
    def embedding(self) -> None:
        self.embed("a product description to index for retrieval", name="embeddings")
