"""The shop assistant from the article, on top of AIChatUser.

Chat (weight 3) and product-text embeddings (weight 1), 1-3 s think time, five e-commerce
prompts. Points at the local mock server unless you pass ``--host``:

    locust -f locustfiles/chat.py --host https://api.openai.com/v1   # key from OPENAI_API_KEY
    locust -f locustfiles/chat.py --ai-model deepseek-chat            # or AI_MODEL=...
"""

from __future__ import annotations

import random

from locust import between, task

from locust_aiapi import AIChatUser

PROMPTS = [
    "查一下我的订单什么时候发货?",  # When will my order ship?
    "推荐一款适合送父母的生日礼物",  # Recommend a birthday gift for my parents
    "退货流程是什么?需要多长时间?",  # How do returns work, and how long do they take?
    "这款手机和另一款对比有什么区别?",  # How does this phone compare with the other one?
    "学生有什么优惠政策?",  # Are there student discounts?
]

PRODUCT_TEXT = "这是一段需要向量化的产品描述文本,用于 RAG 检索系统"  # a product text for RAG


class ShopAssistantUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    wait_time = between(1, 3)
    model = "gpt-4.1"
    max_tokens = 500
    temperature = 0.7
    embedding_model = "text-embedding-3-large"

    @task(3)
    def chat_completion(self) -> None:
        self.chat(random.choice(PROMPTS), name="chat")

    @task(1)
    def embedding_task(self) -> None:
        self.embed(PRODUCT_TEXT, name="embeddings")
