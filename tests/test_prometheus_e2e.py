"""A real Prometheus scrapes real Locust runs (one process, then a master with two workers).

PromQL through Prometheus's HTTP API must agree with the run's JSON summary: request outcomes, failures by
kind and tokens exactly, TTFT p95 within one Prometheus bucket. Every run lingers a few seconds at the end
(``TEST_LINGER_S``) so that Prometheus, scraping every second, has the final state; the queries then read
it with ``last_over_time`` (once the process is gone its series are stale for instant queries).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from locust_aiapi._collector import LATENCY_BOUNDARIES_MS
from locust_aiapi.mock import MockProcess

from ._support import TEST_LOCUSTFILES, headless
from .prometheus_support import LocustProcess, PrometheusServer, free_port, start_prometheus

LINGERING = TEST_LOCUSTFILES / "lingering_chat.py"
MOCK_ARGS = [
    "--ttft-ms", "120", "--ttft-jitter-ms", "60", "--itl-ms", "4", "--output-tokens", "12", "--seed", "5",
    "--rate-429", "0.1", "--rate-500", "0.05", "--rate-stream-error", "0.05",
]  # fmt: skip
RUN_ENV = {"TEST_LINGER_S": "3", "TEST_WAIT_S": "0.05"}
WINDOW = "5m"  # longer than any test: last_over_time over it is the last scraped value


def last(selector: str) -> str:
    return f"last_over_time({selector}[{WINDOW}])"


def by_label(prometheus: PrometheusServer, promql: str, label: str) -> dict[str, float]:
    return {row["metric"][label]: float(row["value"][1]) for row in prometheus.query(promql)}


def bucket_containing(value_s: float, slack: float = 0.01) -> tuple[float, float]:
    """The Prometheus bucket ``[lower, upper]`` around ``value_s``, widened to the next boundary on either
    side when ``value_s`` is within ``slack`` of one: the summary's p95 and the bucket a sample is poured
    into are each within the log histogram's 0.5 % of the sample."""
    bounds = [bound / 1000.0 for bound in LATENCY_BOUNDARIES_MS]
    lower = max((b for b in bounds if b < value_s * (1.0 - slack)), default=0.0)
    upper = min((b for b in bounds if b >= value_s * (1.0 + slack)), default=math.inf)
    return lower, upper


def assert_promql_agrees_with(prometheus: PrometheusServer, total: dict[str, Any]) -> None:
    outcomes = by_label(prometheus, f"sum by (outcome) ({last('locust_aiapi_requests_total')})", "outcome")
    expected = {"success": total["successes"], "failure": total["failures"], "cancelled": total["cancelled"]}
    assert outcomes == expected
    kinds = by_label(prometheus, f"sum by (kind) ({last('locust_aiapi_failures_total')})", "kind")
    assert kinds == total["failures_by_kind"] and {"rate_limited", "server_error"} <= set(kinds)
    tokens = prometheus.query_value(f"sum({last('locust_aiapi_output_tokens_total')})")
    assert tokens == total["output_tokens"] > 0
    prompt_tokens = prometheus.query_value(f"sum({last('locust_aiapi_prompt_tokens_total')})")
    assert prompt_tokens == total["prompt_tokens"]
    peak_rate = prometheus.query_value(
        f"max_over_time(sum(rate(locust_aiapi_output_tokens_total[5s]))[{WINDOW}:1s])"
    )
    assert peak_rate is not None and peak_rate > 0
    ttft = total["ttft_ms"]
    assert prometheus.query_value(f"sum({last('locust_aiapi_ttft_seconds_count')})") == ttft["count"]
    p95_s = prometheus.query_value(
        f"histogram_quantile(0.95, sum by (le) ({last('locust_aiapi_ttft_seconds_bucket')}))"
    )
    lower, upper = bucket_containing(ttft["p95"] / 1000.0)
    assert p95_s is not None and lower <= p95_s <= upper, (p95_s, ttft["p95"])
    rate_p95_s = prometheus.query_value(
        f"histogram_quantile(0.95, sum by (le) (increase(locust_aiapi_ttft_seconds_bucket[{WINDOW}])))"
    )
    assert rate_p95_s is not None and lower <= rate_p95_s <= upper, (rate_p95_s, ttft["p95"])


def read_summary(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_promql_over_a_local_run_agrees_with_its_json_summary(tmp_path: Path) -> None:
    port = free_port()
    summary_path = tmp_path / "summary.json"
    with start_prometheus(tmp_path, [f"127.0.0.1:{port}"]) as prometheus, MockProcess(MOCK_ARGS) as mock:
        args = [*headless(mock.url, 10, "5s"), "--ai-metrics-port", str(port)]
        args += ["--ai-summary-json", str(summary_path)]
        with LocustProcess(LINGERING, args, tmp_path, env=RUN_ENV) as locust:
            assert locust.wait(timeout_s=60) == 1, locust.output[-3000:]  # 1: requests failed, as injected
        assert "Traceback" not in locust.output
        total = read_summary(summary_path)["total"]
        assert total["count"] > 100
        assert_promql_agrees_with(prometheus, total)
        assert prometheus.query_value(f"max_over_time(locust_aiapi_users[{WINDOW}])") == 10
        assert prometheus.query_value(last('locust_aiapi_run_state{state="stopped"}')) == 1


def test_promql_over_a_master_and_two_workers_agrees_with_the_masters_json_summary(tmp_path: Path) -> None:
    port, master_port = free_port(), free_port()
    summary_path = tmp_path / "summary.json"
    master_args = [
        *headless("", 10, "5s"), "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
        str(master_port), "--expect-workers", "2", "--ai-metrics-port", str(port),
        "--ai-summary-json", str(summary_path),
    ]  # fmt: skip
    worker_args = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
    with start_prometheus(tmp_path, [f"127.0.0.1:{port}"]) as prometheus, MockProcess(MOCK_ARGS) as mock:
        master_args[master_args.index("--host") + 1] = mock.url
        with (
            LocustProcess(LINGERING, master_args, tmp_path, name="master", env=RUN_ENV) as master,
            LocustProcess(LINGERING, worker_args, tmp_path, name="worker-1", env=RUN_ENV) as worker_1,
            LocustProcess(LINGERING, worker_args, tmp_path, name="worker-2", env=RUN_ENV) as worker_2,
        ):
            assert master.wait(timeout_s=90) == 1, master.output[-3000:]
            worker_1.wait(timeout_s=30)
            worker_2.wait(timeout_s=30)
        for process in (master, worker_1, worker_2):
            assert "Traceback" not in process.output, process.output[-3000:]
        total = read_summary(summary_path)["total"]
        assert total["count"] > 100
        assert_promql_agrees_with(prometheus, total)
        running = prometheus.query_value(f'max_over_time(locust_aiapi_workers{{state="running"}}[{WINDOW}])')
        assert running == 2
        assert prometheus.query_value(f"max_over_time(locust_aiapi_users[{WINDOW}])") == 10
        assert prometheus.query_value(last("locust_aiapi_workers_lost")) == 0
