"""The Prometheus exporter: bucket conversion, label cap, byte-exact exposition, and /metrics in real runs."""

from __future__ import annotations

import logging
import math
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from locust.stats import RequestStats
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from locust_aiapi._collector import (
    LATENCY_BOUNDARIES_MS,
    OTHER,
    TOKEN_GAP_BOUNDARIES_MS,
    AICollector,
    LabelCap,
    prometheus_buckets,
)
from locust_aiapi._histogram import LogHistogram
from locust_aiapi._summary import LLMSummary, NameStats
from locust_aiapi.mock import MockProcess

from ._support import ROOT, TEST_LOCUSTFILES, headless, run_locust
from .prometheus_support import LocustProcess, free_port, http_get, wait_for_metrics

COUNTING = TEST_LOCUSTFILES / "counting_chat.py"
LOGIN = TEST_LOCUSTFILES / "metrics_login.py"
FAST_MOCK = ["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "8"]


def histogram_of(*values_ms: float) -> LogHistogram:
    histogram = LogHistogram()
    for value in values_ms:
        histogram.add(value)
    return histogram


def exposition(collector: AICollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def value(text: str, metric: str, /, **labels: str) -> float | None:
    """The first sample ``metric{labels}`` (labels as a subset) in exposition ``text``; None if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and labels.items() <= sample.labels.items():
                return float(sample.value)
    return None


# --- bucket conversion ------------------------------------------------------------------------


def test_bucket_labels_are_the_documented_boundaries_in_seconds() -> None:
    buckets = prometheus_buckets(LogHistogram(), LATENCY_BOUNDARIES_MS)
    assert [le for le, _ in buckets] == [
        "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.15", "0.2", "0.3", "0.4", "0.5", "0.75",
        "1.0", "1.5", "2.0", "3.0", "5.0", "7.5", "10.0", "15.0", "20.0", "30.0", "60.0", "120.0",
        "300.0", "+Inf",
    ]  # fmt: skip
    assert [le for le, _ in prometheus_buckets(LogHistogram(), TOKEN_GAP_BOUNDARIES_MS)][:4] == [
        "0.001", "0.0025", "0.005", "0.0075",
    ]  # fmt: skip
    assert all(n == 0 for _, n in buckets)


def test_each_sample_counts_in_the_first_boundary_at_or_above_it() -> None:
    rng = random.Random(7)
    boundaries = LATENCY_BOUNDARIES_MS
    for _ in range(2000):
        sample_ms = math.exp(rng.uniform(math.log(0.5), math.log(600_000)))
        if any(abs(sample_ms - bound) <= 0.005 * bound for bound in boundaries):
            continue  # within the histogram's 0.5 % of a boundary: see the next test
        buckets = prometheus_buckets(histogram_of(sample_ms), boundaries)
        expected = [1 if sample_ms <= bound else 0 for bound in boundaries] + [1]
        assert [n for _, n in buckets] == expected, sample_ms


def test_a_sample_within_half_a_percent_of_a_boundary_lands_on_either_side() -> None:
    for bound in LATENCY_BOUNDARIES_MS:
        for sample_ms in (bound * 0.996, bound, bound * 1.004):
            buckets = dict(prometheus_buckets(histogram_of(sample_ms), LATENCY_BOUNDARIES_MS))
            below = [b for b in LATENCY_BOUNDARIES_MS if b < bound]
            assert not below or buckets[repr(below[-1] / 1000)] == 0, sample_ms  # never two buckets low
            above = [b for b in LATENCY_BOUNDARIES_MS if b > bound]
            assert not above or buckets[repr(above[0] / 1000)] == 1, sample_ms  # never two buckets high


def test_zero_samples_count_in_the_first_bucket_and_count_and_sum_are_exact() -> None:
    histogram = histogram_of(0.0, 0.0, 3.0, 70_000.0, 900_000.0)
    buckets = prometheus_buckets(histogram, LATENCY_BOUNDARIES_MS)
    assert buckets[0] == ("0.005", 3)
    assert dict(buckets)["60.0"] == 3 and dict(buckets)["120.0"] == 4 and dict(buckets)["300.0"] == 4
    assert buckets[-1] == ("+Inf", histogram.count) == ("+Inf", 5)
    summary = LLMSummary()
    summary.by_key[("chat", "m")] = NameStats(requests=5, successes=5, ttft_ms=histogram)
    text = exposition(AICollector(SimpleNamespace(runner=None), summary=lambda: summary))
    assert value(text, "locust_aiapi_ttft_seconds_count") == 5
    assert value(text, "locust_aiapi_ttft_seconds_sum") == (3.0 + 70_000.0 + 900_000.0) / 1000


# --- label cap --------------------------------------------------------------------------------


def test_the_label_cap_admits_values_by_first_appearance_and_reads_the_rest_as_other() -> None:
    cap = LabelCap(3)
    cap.admit(["b", "d"])
    cap.admit(["a", "c", "e", "b"])  # a new scrape: room for one more, the first in sorted order
    assert [cap(v) for v in "abcde"] == ["a", "b", OTHER, "d", OTHER]
    cap.admit(["0"])  # sorts first, but came last: admitted values never move
    assert [cap(v) for v in "0abd"] == [OTHER, "a", "b", "d"]
    with pytest.raises(ValueError):
        LabelCap(0)


def test_names_and_models_beyond_the_cap_are_merged_into_other() -> None:
    summary = LLMSummary()
    for i, (name, model) in enumerate([("a", "m1"), ("b", "m1"), ("c", "m2"), ("d", "m3")]):
        stats = NameStats(requests=i + 1, successes=i + 1, output_tokens=10 * (i + 1))
        stats.ttft_ms.add(100.0 * (i + 1))
        summary.by_key[(name, model)] = stats
    stats_before = {key: stats.to_dict() for key, stats in summary.by_key.items()}
    locust_stats = RequestStats()
    for name in "abcd":
        locust_stats.log_request("CHAT", name, 100, 1)
    runner = SimpleNamespace(state="running", user_count=1, stats=locust_stats)
    collector = AICollector(SimpleNamespace(runner=runner), summary=lambda: summary, max_label_values=2)
    text = exposition(collector)
    assert value(text, "locust_aiapi_output_tokens_total", name="a", model="m1") == 10
    assert value(text, "locust_aiapi_output_tokens_total", name="b", model="m1") == 20
    assert value(text, "locust_aiapi_output_tokens_total", name=OTHER, model="m2") == 30
    assert value(text, "locust_aiapi_output_tokens_total", name=OTHER, model=OTHER) == 40
    assert value(text, "locust_aiapi_ttft_seconds_count", name=OTHER, model=OTHER) == 1
    assert value(text, "locust_aiapi_requests_total", name="c") is None
    assert value(text, "locust_requests_total", method="CHAT", name=OTHER) == 2
    assert value(text, "locust_requests_current_rps", method="CHAT", name="c") is None
    assert {key: stats.to_dict() for key, stats in summary.by_key.items()} == stats_before  # read only


# --- the exposition, byte for byte -------------------------------------------------------------


def fixed_summary() -> LLMSummary:
    stats = NameStats(
        requests=10, successes=7, cancelled=1, failures_by_kind={"server_error": 1, "rate_limited": 1},
        prompt_tokens=120, output_tokens=350, retries=2, rate_limited=1,
        ttft_ms=histogram_of(0.0, 4, 40, 120, 120, 180, 12_000), itl_ms=histogram_of(8, 12, 12, 45),
        tpot_ms=histogram_of(2500), e2e_ms=histogram_of(99, 2900, 400_000),
        client_lag_ms=histogram_of(0.05, 0.3, 0.3, 7.35),
    )  # fmt: skip
    summary = LLMSummary()
    summary.by_key[("chat", "gpt-4.1")] = stats
    return summary


def fixed_locust_stats() -> RequestStats:
    stats = RequestStats()
    for response_time_ms in (100, 200, 300, 50):
        stats.log_request("CHAT", "chat", response_time_ms, 10)
    stats.log_error("CHAT", "chat", "boom")
    for response_time_ms in (40, 120, 180):  # the rows --ai-ttft-stats adds
        stats.log_request("TTFT", "chat", response_time_ms, 0)
    # current_rps averages the per-second counts of the 10 s before the last request
    stats.total.start_time, stats.total.last_request_timestamp = 1000.0, 1013.5
    for entry in stats.entries.values():
        entry.num_reqs_per_sec = {1001: 4, 1005: 6}
        entry.num_fail_per_sec = {1005: 1} if entry.method == "CHAT" else {}
    return stats


EXPECTED_EXPOSITION = """\
# HELP locust_aiapi_ttft_seconds Time to first token.
# TYPE locust_aiapi_ttft_seconds histogram
locust_aiapi_ttft_seconds_bucket{le="0.005",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_ttft_seconds_bucket{le="0.01",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_ttft_seconds_bucket{le="0.025",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_ttft_seconds_bucket{le="0.05",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_ttft_seconds_bucket{le="0.075",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_ttft_seconds_bucket{le="0.1",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_ttft_seconds_bucket{le="0.15",model="gpt-4.1",name="chat"} 5.0
locust_aiapi_ttft_seconds_bucket{le="0.2",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="0.3",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="0.4",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="0.5",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="0.75",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="1.0",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="1.5",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="2.0",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="3.0",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="5.0",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="7.5",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="10.0",model="gpt-4.1",name="chat"} 6.0
locust_aiapi_ttft_seconds_bucket{le="15.0",model="gpt-4.1",name="chat"} 7.0
locust_aiapi_ttft_seconds_bucket{le="20.0",model="gpt-4.1",name="chat"} 7.0
locust_aiapi_ttft_seconds_bucket{le="30.0",model="gpt-4.1",name="chat"} 7.0
locust_aiapi_ttft_seconds_bucket{le="60.0",model="gpt-4.1",name="chat"} 7.0
locust_aiapi_ttft_seconds_bucket{le="120.0",model="gpt-4.1",name="chat"} 7.0
locust_aiapi_ttft_seconds_bucket{le="300.0",model="gpt-4.1",name="chat"} 7.0
locust_aiapi_ttft_seconds_bucket{le="+Inf",model="gpt-4.1",name="chat"} 7.0
locust_aiapi_ttft_seconds_count{model="gpt-4.1",name="chat"} 7.0
locust_aiapi_ttft_seconds_sum{model="gpt-4.1",name="chat"} 12.464
# HELP locust_aiapi_ttfc_seconds Time to first content token (reasoning excluded).
# TYPE locust_aiapi_ttfc_seconds histogram
locust_aiapi_ttfc_seconds_bucket{le="0.005",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.01",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.025",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.05",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.075",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.1",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.15",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.2",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.3",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.4",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.5",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="0.75",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="1.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="1.5",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="2.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="3.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="5.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="7.5",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="10.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="15.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="20.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="30.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="60.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="120.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="300.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_bucket{le="+Inf",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_count{model="gpt-4.1",name="chat"} 0.0
locust_aiapi_ttfc_seconds_sum{model="gpt-4.1",name="chat"} 0.0
# HELP locust_aiapi_itl_seconds Inter-token latency, one sample per request.
# TYPE locust_aiapi_itl_seconds histogram
locust_aiapi_itl_seconds_bucket{le="0.001",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_itl_seconds_bucket{le="0.0025",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_itl_seconds_bucket{le="0.005",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_itl_seconds_bucket{le="0.0075",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_itl_seconds_bucket{le="0.01",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_itl_seconds_bucket{le="0.015",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_itl_seconds_bucket{le="0.02",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_itl_seconds_bucket{le="0.025",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_itl_seconds_bucket{le="0.03",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_itl_seconds_bucket{le="0.04",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_itl_seconds_bucket{le="0.05",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="0.075",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="0.1",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="0.15",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="0.2",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="0.3",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="0.5",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="1.0",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="2.0",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_bucket{le="+Inf",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_count{model="gpt-4.1",name="chat"} 4.0
locust_aiapi_itl_seconds_sum{model="gpt-4.1",name="chat"} 0.077
# HELP locust_aiapi_tpot_seconds Time per output token after the first.
# TYPE locust_aiapi_tpot_seconds histogram
locust_aiapi_tpot_seconds_bucket{le="0.001",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.0025",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.005",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.0075",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.01",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.015",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.02",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.025",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.03",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.04",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.05",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.075",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.1",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.15",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.2",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.3",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="0.5",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="1.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="2.0",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_tpot_seconds_bucket{le="+Inf",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_tpot_seconds_count{model="gpt-4.1",name="chat"} 1.0
locust_aiapi_tpot_seconds_sum{model="gpt-4.1",name="chat"} 2.5
# HELP locust_aiapi_e2e_seconds Request start to the end of the response body.
# TYPE locust_aiapi_e2e_seconds histogram
locust_aiapi_e2e_seconds_bucket{le="0.005",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_e2e_seconds_bucket{le="0.01",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_e2e_seconds_bucket{le="0.025",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_e2e_seconds_bucket{le="0.05",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_e2e_seconds_bucket{le="0.075",model="gpt-4.1",name="chat"} 0.0
locust_aiapi_e2e_seconds_bucket{le="0.1",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="0.15",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="0.2",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="0.3",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="0.4",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="0.5",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="0.75",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="1.0",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="1.5",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="2.0",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_e2e_seconds_bucket{le="3.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="5.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="7.5",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="10.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="15.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="20.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="30.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="60.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="120.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="300.0",model="gpt-4.1",name="chat"} 2.0
locust_aiapi_e2e_seconds_bucket{le="+Inf",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_e2e_seconds_count{model="gpt-4.1",name="chat"} 3.0
locust_aiapi_e2e_seconds_sum{model="gpt-4.1",name="chat"} 402.999
# HELP locust_aiapi_client_lag_seconds Per kernel-stamped read: how long received bytes waited to be read.
# TYPE locust_aiapi_client_lag_seconds histogram
locust_aiapi_client_lag_seconds_bucket{le="0.0001",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_client_lag_seconds_bucket{le="0.00025",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_client_lag_seconds_bucket{le="0.0005",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_client_lag_seconds_bucket{le="0.001",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_client_lag_seconds_bucket{le="0.0025",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_client_lag_seconds_bucket{le="0.005",model="gpt-4.1",name="chat"} 3.0
locust_aiapi_client_lag_seconds_bucket{le="0.01",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_client_lag_seconds_bucket{le="0.025",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_client_lag_seconds_bucket{le="0.05",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_client_lag_seconds_bucket{le="0.1",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_client_lag_seconds_bucket{le="0.25",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_client_lag_seconds_bucket{le="1.0",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_client_lag_seconds_bucket{le="+Inf",model="gpt-4.1",name="chat"} 4.0
locust_aiapi_client_lag_seconds_count{model="gpt-4.1",name="chat"} 4.0
locust_aiapi_client_lag_seconds_sum{model="gpt-4.1",name="chat"} 0.008
# HELP locust_aiapi_requests_total AI requests by outcome: success, failure, cancelled.
# TYPE locust_aiapi_requests_total counter
locust_aiapi_requests_total{model="gpt-4.1",name="chat",outcome="success"} 7.0
locust_aiapi_requests_total{model="gpt-4.1",name="chat",outcome="failure"} 2.0
locust_aiapi_requests_total{model="gpt-4.1",name="chat",outcome="cancelled"} 1.0
# HELP locust_aiapi_failures_total Failed AI requests by failure kind.
# TYPE locust_aiapi_failures_total counter
locust_aiapi_failures_total{kind="rate_limited",model="gpt-4.1",name="chat"} 1.0
locust_aiapi_failures_total{kind="server_error",model="gpt-4.1",name="chat"} 1.0
# HELP locust_aiapi_rate_limited_total Requests whose final answer was HTTP 429.
# TYPE locust_aiapi_rate_limited_total counter
locust_aiapi_rate_limited_total{model="gpt-4.1",name="chat"} 1.0
# HELP locust_aiapi_retries_total Retries after 429, 5xx or connection errors.
# TYPE locust_aiapi_retries_total counter
locust_aiapi_retries_total{model="gpt-4.1",name="chat"} 2.0
# HELP locust_aiapi_prompt_tokens_total Prompt tokens reported by the server.
# TYPE locust_aiapi_prompt_tokens_total counter
locust_aiapi_prompt_tokens_total{model="gpt-4.1",name="chat"} 120.0
# HELP locust_aiapi_output_tokens_total Output tokens, failed requests included.
# TYPE locust_aiapi_output_tokens_total counter
locust_aiapi_output_tokens_total{model="gpt-4.1",name="chat"} 350.0
# HELP locust_aiapi_users Running users.
# TYPE locust_aiapi_users gauge
locust_aiapi_users 5.0
# HELP locust_aiapi_workers_lost Workers lost in the run.
# TYPE locust_aiapi_workers_lost gauge
locust_aiapi_workers_lost 0.0
# HELP locust_aiapi_run_state 1 for the current run state.
# TYPE locust_aiapi_run_state gauge
locust_aiapi_run_state{state="ready"} 0.0
locust_aiapi_run_state{state="spawning"} 0.0
locust_aiapi_run_state{state="running"} 1.0
locust_aiapi_run_state{state="cleanup"} 0.0
locust_aiapi_run_state{state="stopping"} 0.0
locust_aiapi_run_state{state="stopped"} 0.0
locust_aiapi_run_state{state="missing"} 0.0
# HELP locust_requests_total Requests, failures included.
# TYPE locust_requests_total counter
locust_requests_total{method="CHAT",name="chat"} 4.0
locust_requests_total{method="TTFT",name="chat"} 3.0
# HELP locust_failures_total Failed requests.
# TYPE locust_failures_total counter
locust_failures_total{method="CHAT",name="chat"} 1.0
locust_failures_total{method="TTFT",name="chat"} 0.0
# HELP locust_requests_current_rps Recent requests per second.
# TYPE locust_requests_current_rps gauge
locust_requests_current_rps{method="CHAT",name="chat"} 1.0
locust_requests_current_rps{method="TTFT",name="chat"} 1.0
# HELP locust_requests_current_fail_per_sec Recent failures per s.
# TYPE locust_requests_current_fail_per_sec gauge
locust_requests_current_fail_per_sec{method="CHAT",name="chat"} 0.1
locust_requests_current_fail_per_sec{method="TTFT",name="chat"} 0.0
# HELP locust_response_time_seconds Response time percentiles.
# TYPE locust_response_time_seconds gauge
locust_response_time_seconds{method="CHAT",name="chat",quantile="0.5"} 0.2
locust_response_time_seconds{method="CHAT",name="chat",quantile="0.9"} 0.3
locust_response_time_seconds{method="CHAT",name="chat",quantile="0.95"} 0.3
locust_response_time_seconds{method="CHAT",name="chat",quantile="0.99"} 0.3
locust_response_time_seconds{method="TTFT",name="chat",quantile="0.5"} 0.12
locust_response_time_seconds{method="TTFT",name="chat",quantile="0.9"} 0.18
locust_response_time_seconds{method="TTFT",name="chat",quantile="0.95"} 0.18
locust_response_time_seconds{method="TTFT",name="chat",quantile="0.99"} 0.18
# HELP locust_response_time_avg_seconds Mean response time.
# TYPE locust_response_time_avg_seconds gauge
locust_response_time_avg_seconds{method="CHAT",name="chat"} 0.1625
locust_response_time_avg_seconds{method="TTFT",name="chat"} 0.11333333333333333
"""


def test_the_exposition_of_a_fixed_state_is_byte_exact() -> None:
    runner = SimpleNamespace(state="running", user_count=5, stats=fixed_locust_stats())
    collector = AICollector(SimpleNamespace(runner=runner), summary=fixed_summary)
    assert exposition(collector) == EXPECTED_EXPOSITION


def test_a_master_exports_its_workers_by_state_and_the_lost_ones() -> None:
    states = ["running", "running", "missing"]
    workers = {f"w{i}": SimpleNamespace(state=state) for i, state in enumerate(states)}
    runner = SimpleNamespace(state="spawning", user_count=20, stats=RequestStats(), clients=workers)
    collector = AICollector(SimpleNamespace(runner=runner), summary=LLMSummary, lost_workers=lambda: 1)
    text = exposition(collector)
    assert value(text, "locust_aiapi_workers", state="running") == 2
    assert value(text, "locust_aiapi_workers", state="missing") == 1
    assert value(text, "locust_aiapi_workers", state="ready") == 0
    assert value(text, "locust_aiapi_workers_lost") == 1
    assert value(text, "locust_aiapi_users") == 20
    assert value(text, "locust_aiapi_run_state", state="spawning") == 1
    local = SimpleNamespace(state="running", user_count=1, stats=RequestStats())
    assert "locust_aiapi_workers{" not in exposition(AICollector(SimpleNamespace(runner=local), LLMSummary))


def test_a_failing_section_is_left_out_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def broken_summary() -> LLMSummary:
        raise RuntimeError("summary unavailable")

    runner = SimpleNamespace(state="running", user_count=3, stats=RequestStats())
    collector = AICollector(SimpleNamespace(runner=runner), summary=broken_summary)
    with caplog.at_level(logging.DEBUG, logger="locust_aiapi"):
        first, second = exposition(collector), exposition(collector)
    assert first == second
    assert value(first, "locust_aiapi_users") == 3 and "locust_aiapi_requests_total" not in first
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "summary unavailable" in (errors[0].exc_text or "")


# --- /metrics in real Locust runs -------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def is_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def served_successes(text: str) -> bool:
    return (value(text, "locust_aiapi_requests_total", name="chat", outcome="success") or 0) > 0


def test_a_headless_run_serves_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    port = free_port()
    with MockProcess(FAST_MOCK) as mock:
        args = [*headless(mock.url, 2, "4s"), "--ai-metrics-port", str(port)]
        with LocustProcess(COUNTING, args, tmp_path) as locust:
            text = wait_for_metrics(f"http://127.0.0.1:{port}/metrics", served_successes)
            assert locust.wait(timeout_s=30) == 0, locust.output[-2000:]
    assert value(text, "locust_aiapi_users") == 2
    assert value(text, "locust_aiapi_run_state", state="running") == 1
    # Locust's own series count each AI call once: no TTFT rows (they are opt-in, --ai-ttft-stats)
    assert label_values(text, "locust_requests_total", "method") == {"CHAT"}
    finished = sum(
        value(text, "locust_aiapi_requests_total", name="chat", outcome=outcome) or 0
        for outcome in ("success", "failure")
    )
    assert value(text, "locust_requests_total", method="CHAT", name="chat") == finished > 0
    assert (value(text, "locust_aiapi_output_tokens_total", name="chat") or 0) > 0
    assert f"Prometheus metrics at http://127.0.0.1:{port}/metrics" in locust.output
    assert not is_listening(port)  # stopped with the run


def test_with_the_web_ui_metrics_are_served_on_its_port_and_nowhere_else(tmp_path: Path) -> None:
    web_port, metrics_port = free_port(), free_port()
    args = [
        "--web-host", "127.0.0.1", "--web-port", str(web_port), "--autostart", "--autoquit", "2",
        "-u", "2", "-r", "2", "-t", "3s", "--ai-metrics-port", str(metrics_port),
    ]  # fmt: skip
    with (
        MockProcess(FAST_MOCK) as mock,
        LocustProcess(COUNTING, [*args, "--host", mock.url], tmp_path) as locust,
    ):
        text = wait_for_metrics(f"http://127.0.0.1:{web_port}/metrics", served_successes)
        assert not is_listening(metrics_port)
        assert locust.wait(timeout_s=30) == 0, locust.output[-2000:]
    assert value(text, "locust_requests_total", method="CHAT", name="chat") is not None


def test_with_web_login_metrics_need_credentials(tmp_path: Path) -> None:
    # Locust leaves authentication to the locustfile: this one accepts HTTP basic auth (what a
    # Prometheus scrape config can send) through a Flask-Login request_loader
    web_port, password = free_port(), "s3cret-for-this-test"
    args = ["--web-host", "127.0.0.1", "--web-port", str(web_port), "--web-login"]
    url = f"http://127.0.0.1:{web_port}/metrics"
    with LocustProcess(LOGIN, args, tmp_path, env={"TEST_METRICS_PASSWORD": password}) as locust:
        status, body = wait_for_status(url, auth=("scraper", password))
        assert status == 200 and value(body, "locust_aiapi_run_state", state="ready") == 1
        status, headers, body = http_get(url)
        assert status == 302 and "/login" in headers["Location"] and "locust_aiapi" not in body
        status, _, body = http_get(url, auth=("scraper", "wrong"))
        assert status == 302 and "locust_aiapi" not in body
        assert locust.stop() == 0, locust.output[-2000:]


def wait_for_status(url: str, auth: tuple[str, str] | None = None, timeout_s: float = 30) -> tuple[int, str]:
    """The first answer of a server that is starting: ``(status, body)``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status, _, body = http_get(url, auth=auth)
            return status, body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def label_values(text: str, metric: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric
    }


def test_max_names_caps_the_names_of_a_real_run(tmp_path: Path) -> None:
    port = free_port()
    with MockProcess([*FAST_MOCK, "--embedding-latency-ms", "2"]) as mock:
        # 20 users: a second name (embeddings, weight 1 of 4) is then all but certain within the run
        args = [*headless(mock.url, 20, "4s"), "--ai-metrics-port", str(port), "--ai-metrics-max-names", "1"]
        with LocustProcess(ROOT / "locustfiles" / "chat.py", args, tmp_path) as locust:
            text = wait_for_metrics(
                f"http://127.0.0.1:{port}/metrics",
                lambda body: OTHER in label_values(body, "locust_aiapi_requests_total", "name"),
            )
            assert locust.wait(timeout_s=30) == 0, locust.output[-2000:]
    names = label_values(text, "locust_aiapi_requests_total", "name")
    assert len(names) == 2 and names - {OTHER} <= {"chat", "embeddings"}
    assert label_values(text, "locust_requests_total", "name") <= names


def test_a_bad_max_names_is_refused_with_one_line(tmp_path: Path) -> None:
    args = [*headless("http://127.0.0.1:9", 1, "1s"), "--ai-metrics-max-names", "0"]
    run = run_locust(COUNTING, tmp_path, args, with_reports=False)
    assert run.returncode != 0 and "Traceback" not in run.stdout + run.stderr
    assert "--ai-metrics-max-names: must be 1 or more, got 0" in run.stderr


def test_no_metrics_binds_no_port(tmp_path: Path, busy_port: int) -> None:
    with MockProcess(FAST_MOCK) as mock:
        args = [*headless(mock.url, 1, "2s"), "--ai-metrics-port", str(busy_port), "--ai-no-metrics"]
        run = run_locust(COUNTING, tmp_path, args, with_reports=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Prometheus metrics" not in run.stdout + run.stderr


def test_no_metrics_adds_no_route_to_the_web_ui(tmp_path: Path) -> None:
    web_port = free_port()
    args = ["--web-host", "127.0.0.1", "--web-port", str(web_port), "--ai-no-metrics"]
    with LocustProcess(COUNTING, args, tmp_path) as locust:
        status, _ = wait_for_status(f"http://127.0.0.1:{web_port}/metrics")
        assert status == 404
        assert locust.stop() == 0, locust.output[-2000:]


def test_a_busy_metrics_port_exits_2_with_one_line(tmp_path: Path, busy_port: int) -> None:
    args = [*headless("http://127.0.0.1:9", 1, "1s"), "--ai-metrics-port", str(busy_port)]
    run = run_locust(COUNTING, tmp_path, args, with_reports=False)
    assert run.returncode == 2
    output = run.stdout + run.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert errors == [
        f"locust-aiapi: error: cannot serve Prometheus metrics on http://127.0.0.1:{busy_port}/metrics: "
        "Address already in use (change --ai-metrics-host/--ai-metrics-port, or pass --ai-no-metrics)"
    ]
