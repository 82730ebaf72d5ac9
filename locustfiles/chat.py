"""The shop assistant from the article, on top of AIChatUser.

Chat (weight 3) and product-text embeddings (weight 1), 1-3 s think time, the single prompts of our
customer-service dataset (``data/customer_service.jsonl``: order status, gifts, returns, comparisons,
student offers; ``--ai-dataset`` or ``--ai-prompt-tokens`` replace them). Points at the local mock
server unless you pass ``--host``:

    locust -f locustfiles/chat.py --host https://api.openai.com/v1   # key from OPENAI_API_KEY
    locust -f locustfiles/chat.py --ai-model deepseek-chat            # or AI_MODEL=...
"""

from __future__ import annotations

from pathlib import Path

from locust import between, task

from locust_aiapi import AIChatUser, Prompt, load_dataset

DATASET = Path(__file__).parent / "data" / "customer_service.jsonl"
PROMPTS = [item for item in load_dataset(str(DATASET)) if isinstance(item, Prompt)]

PRODUCT_TEXT = "这是一段需要向量化的产品描述文本,用于 RAG 检索系统"  # a product text for RAG


class ShopAssistantUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    wait_time = between(1, 3)
    model = "gpt-4.1"
    max_tokens = 500
    temperature = 0.7
    embedding_model = "text-embedding-3-large"
    prompts = PROMPTS

    @task(3)
    def chat_completion(self) -> None:
        self.chat(self.next_prompt(), name="chat")

    @task(1)
    def embedding_task(self) -> None:
        self.embed(PRODUCT_TEXT, name="embeddings")
