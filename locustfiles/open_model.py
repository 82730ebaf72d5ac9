"""Open model: chat requests start at a fixed rate, however slow the answers are (k6 constant-arrival-rate).

``-u`` is the pool of users (the most requests in flight), ``-t`` the duration, ``--ai-arrival-rate``
the starts per second. Latency counts from each request's intended start; starts that find no free
user within ``--ai-arrival-max-delay`` (default 1 s) are dropped and counted. Against the local
mock server unless you pass ``--host``:

    locust-aiapi-mock --port 8000 --max-concurrency 8 --ttft-ms 500 &
    locust -f locustfiles/open_model.py --headless -u 50 -t 1m --ai-arrival-rate 20 \
        --ai-report-html reports/open.html
    locust -f locustfiles/open_model.py --headless -u 50 -t 1m --ai-arrival-rate 20 --ai-arrival-poisson
"""

from __future__ import annotations

import random

from locust import task

from locust_aiapi import ArrivalRateUser, ConstantArrivalRateShape

PROMPTS = ["查一下我的订单什么时候发货?", "推荐一款适合送父母的生日礼物", "学生有什么优惠政策?"]


class Shopper(ArrivalRateUser):
    host = "http://127.0.0.1:8000"
    arrival_rate_per_s = 10.0  # --ai-arrival-rate overrides it
    max_tokens = 200

    @task
    def ask(self) -> None:
        self.chat(random.choice(PROMPTS), name="chat")


class Pool(ConstantArrivalRateShape):
    users = 50  # -u overrides it
    duration_s = 60.0  # -t overrides it
