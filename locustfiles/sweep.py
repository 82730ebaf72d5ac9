"""The article's stepped benchmark: 50, 100 and 200 concurrent users, 60 s each, one report row per step.

Each user sends its next request as soon as the last one ends (the article's thread pool). Against
the local mock server unless you pass ``--host``:

    locust-aiapi-mock --port 8000 &
    locust -f locustfiles/sweep.py --headless --ai-report-html reports/sweep.html
    locust -f locustfiles/sweep.py --headless --ai-steps 10,20,40 --ai-step-duration 20s   # a quick one
"""

from __future__ import annotations

from locust import constant, task

from locust_aiapi import AIChatUser, StepSweepShape


class BenchmarkUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    wait_time = constant(0)
    max_tokens = 100

    @task
    def ask(self) -> None:
        self.chat("请用50字介绍微服务架构", name="chat")  # "Describe microservices in 50 characters"


class Sweep(StepSweepShape):
    steps = (50, 100, 200)
    step_duration_s = 60.0
