"""A flash sale at midnight: 50 shoppers, then 500 at once for 3 minutes, then back to 50.

The article's burst scenario on the shop assistant of ``chat.py``; the report splits the run into
baseline, spike and recovery. Against the local mock server unless you pass ``--host``:

    locust-aiapi-mock --port 8000 --max-concurrency 200 &
    locust -f locustfiles/flash_sale.py --headless --ai-report-html reports/flash-sale.html \\
        --ai-threshold 'ttft_ms:p95<3000' --ai-threshold 'e2e_ms:p99<5000' --ai-threshold 'error_rate<5%'
    locust -f locustfiles/flash_sale.py --headless --ai-spike base=5,peak=50,before=10s,hold=20s,after=10s
"""

from __future__ import annotations

from chat import ShopAssistantUser  # noqa: F401  # Locust runs every user class the locustfile holds

from locust_aiapi import SpikeShape, SpikeSpec


class FlashSale(SpikeShape):
    spike = SpikeSpec(base=50, peak=500, before_s=30.0, hold_s=180.0, after_s=60.0)
