"""`make demo`: the mock server, 50 users of locustfiles/chat.py for 30 s, reports under reports/."""

from __future__ import annotations

import os
import subprocess
import sys

from locust_aiapi.mock import MockProcess

REPORTS = "reports"
# A plausible hosted model: ~300 ms to first token, ~40 tokens/s, answers of 60-180 tokens.
MOCK_ARGS = [
    "--ttft-ms", "300", "--ttft-jitter-ms", "100",
    "--itl-ms", "25", "--itl-jitter-ms", "10",
    "--output-tokens", "120", "--output-tokens-jitter", "60",
    "--seed", "7",
]  # fmt: skip


def main() -> int:
    os.makedirs(REPORTS, exist_ok=True)
    with MockProcess(MOCK_ARGS, log_path=os.path.join(REPORTS, "demo-mock.log")) as mock:
        print(f"mock AI API server at {mock.url}", flush=True)
        command = [
            sys.executable, "-m", "locust",
            "-f", "locustfiles/chat.py",
            "--host", mock.url,
            "--headless", "--users", "50", "--spawn-rate", "25", "--run-time", "30s",
            "--stop-timeout", "10",
            "--only-summary",
            "--html", os.path.join(REPORTS, "demo.html"),
            "--ai-summary-json", os.path.join(REPORTS, "demo-summary.json"),
            "--ai-requests-jsonl", os.path.join(REPORTS, "demo-requests.jsonl"),
            "--ai-metrics-port", "0",  # any free port: the demo must not collide with a running exporter
        ]  # fmt: skip
        code = subprocess.call(command)
    print(f"\nreports: {REPORTS}/demo.html, {REPORTS}/demo-summary.json, {REPORTS}/demo-requests.jsonl")
    return code


if __name__ == "__main__":
    sys.exit(main())
