"""Batched embeddings, as a RAG indexer sends them: 16 product texts per request.

locust -f locustfiles/embeddings.py --host http://127.0.0.1:8000
locust -f locustfiles/embeddings.py --host https://api.openai.com/v1 \
    --ai-embedding-model text-embedding-3-large
"""

from __future__ import annotations

import random

from locust import between, task

from locust_aiapi import EmbeddingUser

PRODUCTS = [
    "无线降噪耳机,续航 30 小时,支持快充",
    "儿童保温杯 350ml,316 不锈钢内胆",
    "Ultralight trail running shoes with a carbon plate",
    "Smart rice cooker, 4 L, app-controlled, 12 cooking modes",
    "机械键盘,热插拔轴体,RGB 背光",
    "Organic green tea, 100 bags, from Hangzhou",
    "4K monitor, 27 inch, USB-C 90 W power delivery",
    "羽绒服,白鸭绒填充,防风防水面料",
]

BATCH_SIZE = 16


class CatalogIndexerUser(EmbeddingUser):
    host = "http://127.0.0.1:8000"
    wait_time = between(0.5, 1.5)
    embedding_model = "text-embedding-3-small"

    @task
    def embed_batch(self) -> None:
        batch = [random.choice(PRODUCTS) for _ in range(BATCH_SIZE)]
        self.embed(batch, name="embeddings-batch-16", dimensions=512)
