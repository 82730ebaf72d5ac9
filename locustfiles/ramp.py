"""The article's k6 ``chat_ramp`` scenario: ramp to 300 users over 2 min, hold 5 min, ramp down over 2 min.

With the article's thresholds (p95 < 3 s, p99 < 5 s, error rate < 5 %) the exit code says whether
the run passed. Against the local mock server unless you pass ``--host``:

    locust-aiapi-mock --port 8000 &
    locust -f locustfiles/ramp.py --headless --ai-report-html reports/ramp.html \\
        --ai-threshold 'e2e_ms:p95<3000' --ai-threshold 'e2e_ms:p99<5000' --ai-threshold 'error_rate<0.05'
    locust -f locustfiles/ramp.py --headless --ai-stages 20s:30,30s:30,10s:0   # a short one
"""

from __future__ import annotations

from chat import ShopAssistantUser  # noqa: F401  # Locust runs every user class the locustfile holds

from locust_aiapi import StagesShape


class ChatRamp(StagesShape):
    stages = ((120.0, 300), (300.0, 300), (120.0, 0))
