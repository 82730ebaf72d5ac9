"""Real headless Locust runs against the real mock server on loopback."""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from locust_aiapi.mock import MockProcess

from ._support import ROOT, TEST_LOCUSTFILES, LocustRun, headless, mock_stats, run_locust

COUNTING = TEST_LOCUSTFILES / "counting_chat.py"


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)]


def perf_to_epoch_s() -> float:
    """What to add to a perf_counter() stamp (CLOCK_MONOTONIC, the same in every process) for epoch time."""
    return min((time.time() - time.perf_counter() for _ in range(5)), key=abs)


def timeline_ms(records: list[dict[str, Any]], truth: Path) -> dict[str, list[float]]:
    """Per record, the client's stamps against the mock's on one timeline, in ms.

    ``to_read``: mock reads the request minus client starts it. ``to_send``: client's first token minus
    the mock's stamp before it sent that token; ``to_sent``: ... minus its stamp after the send. Both
    lower bounds are causal: a busy host delaying the mock (its timer, its read, its stamp after the
    send) moves them up, never down. ``to_sent`` rises only when the client stamps late.
    """
    offset_s = perf_to_epoch_s()
    served = {row["request_id"]: row for row in map(json.loads, truth.read_text().splitlines())}
    assert {r["request_id"] for r in records} <= served.keys()
    lines: dict[str, list[float]] = {"to_read": [], "to_send": [], "to_sent": []}
    for record in records:
        row = served[record["request_id"]]
        first_token_s = record["start_time"] + record["ttft_ms"] / 1000.0
        lines["to_read"].append((row["received_s"] + offset_s - record["start_time"]) * 1000.0)
        lines["to_send"].append((first_token_s - row["first_token_send_s"] - offset_s) * 1000.0)
        lines["to_sent"].append((first_token_s - row["first_token_s"] - offset_s) * 1000.0)
    return lines


def check_ttft_at_20_users(run: LocustRun, truth: Path) -> list[dict[str, Any]]:
    """The 200 ms TTFT runs: all succeed, none below 200 ms, each stamped within 10 ms of the mock's send."""
    assert run.returncode == 0, run.stderr[-2000:]
    # a request that starts as the run ends may be cancelled: not a measurement, not a failure
    records = sorted((r for r in run.records if r["outcome"] != "cancelled"), key=lambda r: r["start_time"])
    assert all(r["outcome"] == "success" for r in records)
    ttfts = [r["ttft_ms"] for r in records]
    assert min(ttfts) >= 200.0  # the mock waits 200 ms after it has read the request
    assert statistics.median(ttfts) <= 205.0
    # "at 20 users": once all 20 run (spawning takes 1 s at -r 20 and holds the hub meanwhile)
    at_20_users = [r for r in records if r["start_time"] >= records[0]["start_time"] + 1.5]
    assert len(at_20_users) > 300
    lines = timeline_ms(at_20_users, truth)
    # starts before the mock reads it, and not long before: TTFT counts from the request, not earlier
    assert min(lines["to_read"]) >= -0.5 and statistics.median(lines["to_read"]) <= 2.0
    assert min(lines["to_send"]) >= -0.5  # never before the token left the mock
    assert statistics.median(lines["to_sent"]) <= 2.0
    assert nearest_rank(lines["to_sent"], 0.99) <= 10.0, sorted(lines["to_sent"])[-10:]
    return records


def test_measured_ttft_is_within_10ms_of_the_configured_200ms_at_20_users(tmp_path: Path) -> None:
    truth = tmp_path / "served.jsonl"
    with MockProcess(
        ["--ttft-ms", "200", "--itl-ms", "20", "--output-tokens", "10", "--record", str(truth)], cpu=1
    ) as mock:
        run = run_locust(
            COUNTING,
            tmp_path,
            headless(mock.url, 20, "10s", "--stop-timeout", "5"),
            env={"TEST_WAIT_S": "0.1"},
            cpu=0,
        )
    records = check_ttft_at_20_users(run, truth)
    total = run.summary["total"]
    assert 200.0 <= total["ttft_ms"]["p50"] <= 205.0
    assert total["count"] - total["cancelled"] == len(records)


def test_each_injected_fault_is_counted_under_its_kind(tmp_path: Path) -> None:
    mock_args = [
        "--ttft-ms", "10", "--itl-ms", "2", "--output-tokens", "8", "--seed", "3",
        "--rate-429", "0.1", "--rate-500", "0.1", "--rate-stream-error", "0.1", "--rate-truncate", "0.1",
    ]  # fmt: skip
    started_file = tmp_path / "started"
    with MockProcess(mock_args) as mock:
        run = run_locust(
            COUNTING,
            tmp_path,
            headless(mock.url, 10, "6s", "--stop-timeout", "5", "--csv", str(tmp_path / "csv")),
            env={"TEST_STARTED_FILE": str(started_file)},
        )
        served = mock_stats(mock.url)
    assert run.returncode == 1  # Locust exits 1 when requests failed
    started = int(started_file.read_text())
    records = run.records
    assert started == len(records) == run.summary["total"]["count"] > 100
    total = run.summary["total"]
    kinds = total["failures_by_kind"]
    outcomes = served["outcomes"]
    cancelled = total["cancelled"]  # a call Locust killed as the run ended: the mock served it anyway
    assert sum(outcomes.values()) == started
    assert total["successes"] + total["failures"] + cancelled == started
    for kind in ("rate_limited", "server_error", "stream_error", "truncated"):
        assert kinds.get(kind, 0) <= outcomes[kind] <= kinds.get(kind, 0) + cancelled, kind
        assert kinds.get(kind, 0) > 0, kind
    assert set(kinds) == {"rate_limited", "server_error", "stream_error", "truncated"}
    assert total["successes"] <= outcomes["ok"] <= total["successes"] + cancelled
    # Locust's own statistics saw every call once, and nothing else (no TTFT rows by default)
    rows = {(row["method"], row["name"]): row for row in run.locust_stats}
    assert set(rows) == {("CHAT", "chat")}
    chat_row = rows[("CHAT", "chat")]
    assert chat_row["num_requests"] == started - cancelled == sum(outcomes.values()) - cancelled
    assert chat_row["num_failures"] == total["failures"]
    with open(tmp_path / "csv_failures.csv") as file:
        failures = {row["Error"]: int(row["Occurrences"]) for row in csv.DictReader(file)}
    assert {error.split(":")[0] for error in failures} == set(kinds)
    rate_limited = [error for error in failures if error.startswith("rate_limited: HTTP 429: ")]
    assert rate_limited and "Rate limit" in rate_limited[0]  # the server's own message


def test_ai_ttft_stats_adds_one_ttft_row_per_successful_stream_to_locusts_stats(tmp_path: Path) -> None:
    with MockProcess(
        ["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "5", "--rate-500", "0.2"]
    ) as mock:
        run = run_locust(
            COUNTING, tmp_path, headless(mock.url, 4, "3s", "--stop-timeout", "5", "--ai-ttft-stats")
        )
    total = run.summary["total"]
    rows = {(row["method"], row["name"]): row for row in run.locust_stats}
    assert set(rows) == {("CHAT", "chat"), ("TTFT", "chat")}
    assert rows[("CHAT", "chat")]["num_requests"] == total["count"] - total["cancelled"]
    assert rows[("TTFT", "chat")]["num_requests"] == total["successes"] > 0
    assert rows[("TTFT", "chat")]["num_failures"] == 0 < total["failures"]


def test_requests_in_flight_when_the_test_stops_are_recorded_as_cancelled(tmp_path: Path) -> None:
    started_file = tmp_path / "started"
    with MockProcess(["--ttft-ms", "300", "--itl-ms", "50", "--output-tokens", "40"]) as mock:
        run = run_locust(
            COUNTING, tmp_path, headless(mock.url, 10, "3s"), env={"TEST_STARTED_FILE": str(started_file)}
        )
    assert run.returncode == 0, run.stderr[-2000:]
    records = run.records
    cancelled = [r for r in records if r["outcome"] == "cancelled"]
    assert int(started_file.read_text()) == len(records)
    assert len(cancelled) == 10  # every user was mid-stream (each answer takes 2.3 s)
    assert run.summary["total"]["cancelled"] == 10
    chat_row = next(row for row in run.locust_stats if row["method"] == "CHAT")
    assert chat_row["num_requests"] == len(records) - len(cancelled)


def test_the_article_locustfile_runs_chat_and_embeddings(tmp_path: Path) -> None:
    with MockProcess(["--ttft-ms", "50", "--itl-ms", "5", "--output-tokens", "20"]) as mock:
        run = run_locust(
            ROOT / "locustfiles" / "chat.py",
            tmp_path,
            headless(mock.url, 12, "6s", "--stop-timeout", "5"),  # ~36 task draws: embeddings (1 of 4) run
            env={"AI_MODEL": "deepseek-v3.2"},
        )
        served_stats = mock_stats(mock.url)
    assert run.returncode == 0, run.stderr[-2000:]
    by_name = run.summary["requests"]
    assert by_name["chat"]["count"] > 0 and by_name["embeddings"]["count"] > 0
    assert by_name["chat"]["failures"] == 0 and by_name["embeddings"]["failures"] == 0
    # Locust's stats: one row per AI name, each call counted once (what the mock served, less the
    # calls cut off by the end of the run, which Locust never hears of)
    rows = {(row["method"], row["name"]): row["num_requests"] for row in run.locust_stats}
    cancelled = {name: row["cancelled"] for name, row in by_name.items()}
    assert rows == {
        ("CHAT", "chat"): by_name["chat"]["count"] - cancelled["chat"],
        ("EMBED", "embeddings"): by_name["embeddings"]["count"] - cancelled["embeddings"],
    }
    served = sum(served_stats["outcomes"].values())
    assert sum(rows.values()) == served - sum(cancelled.values())
    chat_models = {r["model"] for r in run.records if r["kind"] == "chat"}
    assert chat_models == {"deepseek-v3.2"}
    assert "LLM summary" in run.stdout + run.stderr


def test_the_batched_embeddings_locustfile(tmp_path: Path) -> None:
    with MockProcess(["--embedding-latency-ms", "5"]) as mock:
        run = run_locust(
            ROOT / "locustfiles" / "embeddings.py",
            tmp_path,
            headless(mock.url, 4, "4s", "--stop-timeout", "5"),
        )
    assert run.returncode == 0, run.stderr[-2000:]
    row = run.summary["requests"]["embeddings-batch-16"]
    assert row["count"] > 0 and row["failures"] == 0
    answered = [r for r in run.records if r["outcome"] != "cancelled"]  # the stop can cut one short
    assert answered and all(r["prompt_tokens"] for r in answered)


def test_the_api_key_never_appears_in_output_or_reports(tmp_path: Path) -> None:
    key = "sk-test-DO-NOT-LEAK-4f1c2a"
    with MockProcess(["--api-key", key, "--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4"]) as mock:
        run = run_locust(
            COUNTING,
            tmp_path,
            [
                *headless(mock.url, 2, "2s", "--stop-timeout", "3"),
                "--html",
                str(tmp_path / "report.html"),
                "-L",
                "DEBUG",
            ],
            env={"OPENAI_API_KEY": key},
        )
    assert run.returncode == 0, run.stderr[-2000:]  # the mock accepted the key: no 401s
    assert run.summary["total"]["successes"] > 0
    for text in (run.stdout, run.stderr, *(p.read_text() for p in tmp_path.iterdir() if p.is_file())):
        assert key not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ai-max-retries", "-1"], "--ai-max-retries"),
        (["--ai-retry-base-delay", "soon"], "--ai-retry-base-delay"),
        (["--ai-requests-jsonl", "/proc/no/such/dir/x.jsonl"], "cannot write --ai-requests-jsonl"),
        (["--ai-summary-json", "/proc/no/such/dir/x.json"], "cannot write --ai-summary-json"),
    ],
)
def test_configuration_mistakes_give_one_clear_line_and_no_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    run = run_locust(
        COUNTING, tmp_path, [*headless("http://127.0.0.1:9", 1, "1s"), *args], with_reports=False
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr + run.stdout
    assert message in run.stderr


def test_missing_host_gives_one_clear_line(tmp_path: Path) -> None:
    run = run_locust(
        TEST_LOCUSTFILES / "no_host.py", tmp_path, ["--headless", "-u", "1", "-t", "1s"], with_reports=False
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr + run.stdout
    assert "no host for NoHostUser: pass --host URL" in run.stderr
