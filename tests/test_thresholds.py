"""Thresholds and goodput: the grammar, evaluation against a summary, exit codes of real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from locust_aiapi import LLMSummary, Outcome, RequestKind, RequestRecord, TokenSource
from locust_aiapi._goodput import SLO, GoodputCounter
from locust_aiapi._thresholds import Context, evaluate, parse_threshold, split_thresholds
from locust_aiapi.mock import MockProcess

from ._support import TEST_LOCUSTFILES, headless, run_locust

COUNTING = TEST_LOCUSTFILES / "counting_chat.py"


# --- grammar --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "metric", "stat", "op", "limit"),
    [
        ("ttft_ms:p95<3000", None, "ttft_ms", "p95", "<", 3000.0),
        ("e2e_ms:p(99) <= 5000", None, "e2e_ms", "p99", "<=", 5000.0),
        ("chat:ttft_ms:p99.9<800", "chat", "ttft_ms", "p99.9", "<", 800.0),
        ("my:name:itl_ms:avg<40", "my:name", "itl_ms", "mean", "<", 40.0),
        ("tpot_ms:med<50", None, "tpot_ms", "p50", "<", 50.0),
        ("output_tokens_per_s:p50>=30", None, "output_tokens_per_s", "p50", ">=", 30.0),
        ("error_rate<0.05", None, "error_rate", None, "<", 0.05),
        ("error_rate<5%", None, "error_rate", None, "<", 0.05),
        ("embeddings:success_rate>99%", "embeddings", "success_rate", None, ">", 0.99),
        ("output_tokens_per_s>200", None, "output_tokens_per_s", None, ">", 200.0),
        ("aggregate_output_tokens_per_s>200", None, "output_tokens_per_s", None, ">", 200.0),
        ("goodput>=0.9", None, "goodput", None, ">=", 0.9),
        ("dropped<1", None, "dropped", None, "<", 1.0),
    ],
)
def test_the_grammar(
    text: str, name: str | None, metric: str, stat: str | None, op: str, limit: float
) -> None:
    threshold = parse_threshold(text)
    assert (threshold.name, threshold.metric, threshold.stat, threshold.op) == (name, metric, stat, op)
    assert threshold.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ttft_ms<3000", "ttft_ms needs a statistic, like ttft_ms:p95"),
        ("ttft:p95<3000", "a statistic applies to ttft_ms"),
        ("latency<3000", "unknown metric 'latency'"),
        ("ttft_ms:p95", "expected [NAME:]METRIC[:STAT] OP NUMBER"),
        ("ttft_ms:p95<fast", "'fast' is not a number"),
        ("ttft_ms:p101<3", "unknown metric 'p101'"),
        ("ttft_ms:p95<inf", "finite"),
        ("chat:dropped<1", "whole run"),
        (":ttft_ms:p95<1", "empty request name"),
        ("error_rate<=5", "a ratio from 0 to 1: write error_rate<=0.05 or error_rate<=5%"),
        ("goodput>90", "a ratio from 0 to 1"),
        ("chat:success_rate>-0.1", "a ratio from 0 to 1"),
    ],
)
def test_malformed_thresholds_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_threshold(text)


def test_option_values_split_into_thresholds() -> None:
    assert split_thresholds(None) == []
    assert split_thresholds("a<1, b<2;c<3") == ["a<1", "b<2", "c<3"]
    assert split_thresholds(["a<1", "b<2,c<3"]) == ["a<1", "b<2", "c<3"]


# --- evaluation -----------------------------------------------------------------------------------


def record(
    name: str, ttft_s: float, ok: bool = True, tokens: int = 11, start: float = 100.0
) -> RequestRecord:
    times = [start + ttft_s + 0.01 * k for k in range(tokens)]
    rec = RequestRecord(
        name=name, kind=RequestKind.CHAT, model="gpt-4.1", streamed=True, start_epoch_s=1e9 + start,
        start_s=start, end_s=times[-1] + 0.001, first_token_s=times[0], first_content_s=times[0],
        last_token_s=times[-1], token_chunk_times_s=times, output_tokens=tokens,
        output_tokens_source=TokenSource.USAGE, prompt_tokens=5,
    )  # fmt: skip
    if not ok:
        rec.outcome, rec.first_token_s = Outcome.FAILURE, None
    return rec


def context_for(records: list[RequestRecord], slo: SLO) -> Context:
    summary, goodput = LLMSummary(), GoodputCounter()
    for rec in records:
        summary.add(rec)
        goodput.add(rec, slo)
    rows, total = summary.by_name, summary.total
    windows = {name: row.window_s for name, row in rows.items()} | {"total": total.window_s}
    return Context(rows, total, goodput.report(slo, windows), None)


def test_thresholds_measure_what_the_summary_reports() -> None:
    records = [record("chat", 0.1 * (i + 1), start=100.0 + i) for i in range(10)]
    records += [record("chat", 0.0, ok=False, start=111.0), record("embed", 0.05, start=112.0)]
    context = context_for(records, SLO(ttft_ms=450.0))
    texts = [
        "ttft_ms:p50<=500", "chat:ttft_ms:max<1000", "chat:error_rate<0.05", "error_rate<10%",
        "embed:goodput>=1", "goodput>0.5", "requests>=12", "failures<1", "nobody:ttft_ms:p50<1",
        "dropped<1", "oops",
    ]  # fmt: skip
    results = {r["threshold"]: r for r in evaluate(texts, context)}
    assert results["ttft_ms:p50<=500"]["measured"] == pytest.approx(500.0, rel=0.01)
    slowest, chat_errors = results["chat:ttft_ms:max<1000"], results["chat:error_rate<0.05"]
    assert slowest["measured"] == pytest.approx(1000.0) and not slowest["passed"]
    assert chat_errors["measured"] == pytest.approx(1 / 11) and not chat_errors["passed"]
    assert results["error_rate<10%"]["passed"]  # 1 of 12
    assert results["embed:goodput>=1"]["passed"]
    assert results["goodput>0.5"]["measured"] == pytest.approx(5 / 12)  # TTFT 100..400 ms and the embed
    assert results["requests>=12"]["passed"] and not results["failures<1"]["passed"]
    nobody = results["nobody:ttft_ms:p50<1"]
    assert (nobody["passed"], nobody["measured"], nobody["error"]) == (False, None, "no data")
    assert results["dropped<1"]["error"] == "no data"  # not an open-model run
    assert not results["oops"]["passed"] and "expected [NAME:]METRIC" in results["oops"]["error"]


def test_goodput_counts_only_successes_that_meet_every_slo() -> None:
    slo = SLO(ttft_ms=200.0, e2e_ms=300.0)
    counter = GoodputCounter()
    for rec in [
        record("chat", 0.1),
        record("chat", 0.25),
        record("chat", 0.15, tokens=20),
        record("chat", 0.1, False),
    ]:
        counter.add(rec, slo)
    cancelled = record("chat", 0.1)
    cancelled.outcome = Outcome.CANCELLED
    counter.add(cancelled, slo)
    assert counter.by_name == {"chat": [4, 1]}  # slow TTFT, slow E2E (0.15 + 0.19 s), failed: not good
    merged = GoodputCounter()
    merged.absorb(json.loads(json.dumps(counter.take_report())))
    merged.absorb({"chat": [1, 1]})
    assert merged.by_name == {"chat": [5, 2]} and counter.by_name == {}
    assert GoodputCounter().report(SLO(), {}) is None  # no SLO, no goodput


# --- real runs ------------------------------------------------------------------------------------


def run_with(tmp_path: Path, mock_args: list[str], *args: str) -> object:
    with MockProcess(mock_args) as mock:
        return run_locust(
            COUNTING, tmp_path, headless(mock.url, 4, "3s", "--stop-timeout", "2", "--ai-no-metrics", *args)
        )


def test_passing_thresholds_exit_0_even_with_failed_requests(tmp_path: Path) -> None:
    mock = ["--ttft-ms", "30", "--itl-ms", "2", "--output-tokens", "8", "--rate-500", "0.1", "--seed", "5"]
    run = run_with(
        tmp_path, mock, "--ai-threshold", "error_rate<0.5",
        "--ai-threshold", "chat:ttft_ms:p95<3000,goodput>0.5",
        "--ai-slo-ttft-ms", "1000", "--ai-slo-e2e-ms", "2000",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]  # Locust alone would exit 1: some requests failed
    summary = run.summary
    assert summary["total"]["failures"] > 0
    assert summary["thresholds_passed"] is True
    assert [r["threshold"] for r in summary["thresholds"]] == [
        "error_rate<0.5",
        "chat:ttft_ms:p95<3000",
        "goodput>0.5",
    ]
    assert all(r["passed"] and r["measured"] is not None for r in summary["thresholds"])
    goodput = summary["goodput"]["total"]
    assert goodput["good"] == summary["total"]["successes"]  # every success met the generous SLO
    assert goodput["completed"] == summary["total"]["count"] - summary["total"]["cancelled"]
    assert "PASS  error_rate<0.5" in run.stderr and "all 3 passed" in run.stderr


def test_a_failing_threshold_exits_3_and_says_which(tmp_path: Path) -> None:
    mock = ["--ttft-ms", "30", "--itl-ms", "2", "--output-tokens", "8"]
    run = run_with(tmp_path, mock, "--ai-threshold", "ttft_ms:p95<10", "--ai-threshold", "error_rate<0.05")
    assert run.returncode == 3, run.stderr[-3000:]
    results = {r["threshold"]: r for r in run.summary["thresholds"]}
    assert results["ttft_ms:p95<10"]["passed"] is False
    assert results["ttft_ms:p95<10"]["measured"] >= 30.0
    assert results["error_rate<0.05"]["passed"] is True
    assert run.summary["thresholds_passed"] is False
    assert "FAIL  ttft_ms:p95<10" in run.stderr and "1 of 2 failed" in run.stderr
    assert "Shutting down (exit code 3)" in run.stderr


def test_a_malformed_threshold_is_rejected_at_start(tmp_path: Path) -> None:
    args = headless("http://127.0.0.1:9", 1, "2s", "--ai-threshold", "ttft_ms<3000")
    run = run_locust(COUNTING, tmp_path, args, with_reports=False)
    assert run.returncode == 2
    assert (
        "argument --ai-threshold: threshold 'ttft_ms<3000': ttft_ms needs a statistic, like ttft_ms:p95"
        in (run.stderr)
    )
    assert "Traceback" not in run.stderr


def test_an_unreadable_pricing_file_is_rejected_at_start(tmp_path: Path) -> None:
    (tmp_path / "prices.json").write_text('{"gpt-4.1": "eight"}')
    args = headless("http://127.0.0.1:9", 1, "2s", "--ai-pricing", str(tmp_path / "prices.json"))
    run = run_locust(COUNTING, tmp_path, args, with_reports=False)
    assert run.returncode == 2
    assert (
        "locust-aiapi: error: --ai-pricing: 'gpt-4.1': expected a price in US$ per million tokens"
        in run.stderr
    )
    assert "Traceback" not in run.stderr
