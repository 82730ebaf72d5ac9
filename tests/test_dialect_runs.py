"""Real headless Locust runs against the real mock server in the other dialects (``--ai-dialect``)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from locust_aiapi.mock import MockProcess

from ._support import ROOT, TEST_LOCUSTFILES, headless, mock_stats, run_locust
from .test_locust_runs import check_ttft_at_20_users

COUNTING = TEST_LOCUSTFILES / "counting_chat.py"
# what the end of a successful stream says, by dialect (10 tokens: below max_tokens)
FINISH_REASONS = {
    "anthropic": "end_turn",
    "openai-responses": "completed",
    "azure-openai": "stop",
    "openai-completions": "stop",
}
# the kind the client counts each of the mock's fault outcomes under, by dialect
STREAM_ERROR_KINDS = {
    "anthropic": "overloaded",
    "openai-responses": "stream_error",
    "azure-openai": "stream_error",
    "openai-completions": "stream_error",
}


@pytest.mark.parametrize("dialect", sorted(FINISH_REASONS))
def test_ttft_is_within_10ms_of_the_configured_200ms_and_tokens_equal_usage(
    tmp_path: Path, dialect: str
) -> None:
    truth = tmp_path / "served.jsonl"
    mock_args = ["--ttft-ms", "200", "--itl-ms", "20", "--output-tokens", "10", "--api-key", "sk-ant-run"]
    with MockProcess([*mock_args, "--record", str(truth)], cpu=1) as mock:
        run = run_locust(
            COUNTING,
            tmp_path,
            headless(mock.url, 20, "10s", "--stop-timeout", "5", "--ai-dialect", dialect),
            env={"TEST_WAIT_S": "0.1", "OPENAI_API_KEY": "sk-ant-run"},  # --ai-api-key's variable
            cpu=0,
        )
    records = check_ttft_at_20_users(run, truth)
    # the mock sends 10 text deltas and says output_tokens 10 in its usage
    assert {(r["output_tokens"], r["output_tokens_source"]) for r in records} == {(10, "usage")}
    assert {len(r["chunk_offsets_ms"]) for r in records} == {10}
    prompt = len("How long does shipping take?") // 4
    assert {r["prompt_tokens"] for r in records} == {prompt}
    assert {r["finish_reason"] for r in records} == {FINISH_REASONS[dialect]}
    assert all(r["ttfc_ms"] == r["ttft_ms"] for r in records)  # no thinking: the first token is visible


@pytest.mark.parametrize("dialect", sorted(STREAM_ERROR_KINDS))
def test_injected_faults_are_counted_under_their_kinds(tmp_path: Path, dialect: str) -> None:
    mock_args = [
        "--ttft-ms", "10", "--itl-ms", "2", "--output-tokens", "8", "--seed", "3",
        "--rate-429", "0.1", "--rate-500", "0.1", "--rate-stream-error", "0.1", "--rate-truncate", "0.1",
    ]  # fmt: skip
    started_file = tmp_path / "started"
    with MockProcess(mock_args) as mock:
        run = run_locust(
            COUNTING,
            tmp_path,
            headless(mock.url, 10, "6s", "--stop-timeout", "5", "--ai-dialect", dialect),
            env={"TEST_STARTED_FILE": str(started_file)},
        )
        served = mock_stats(mock.url)
    assert run.returncode == 1
    started = int(started_file.read_text())
    total = run.summary["total"]
    assert started == len(run.records) == total["count"] > 100
    kinds = total["failures_by_kind"]
    outcomes = served["outcomes"]
    cancelled = total["cancelled"]
    # Anthropic's stream-error fault is the overloaded_error event it sends mid-stream
    client_kind = {"rate_limited": "rate_limited", "server_error": "server_error"}
    client_kind |= {"stream_error": STREAM_ERROR_KINDS[dialect], "truncated": "truncated"}
    for outcome, kind in client_kind.items():
        assert 0 < kinds.get(kind, 0) <= outcomes[outcome] <= kinds.get(kind, 0) + cancelled, kind
    assert set(kinds) == set(client_kind.values())
    assert total["successes"] <= outcomes["ok"] <= total["successes"] + cancelled
    messages = {r["failure_message"] for r in run.records if r["failure_kind"] == client_kind["stream_error"]}
    assert len(messages) == 1 and messages.pop().startswith("error in stream: ")


def test_the_claude_locustfile_measures_thinking_before_the_first_visible_text(tmp_path: Path) -> None:
    with MockProcess(["--ttft-ms", "50", "--itl-ms", "10", "--output-tokens", "20"]) as mock:
        run = run_locust(
            ROOT / "locustfiles" / "claude.py", tmp_path, headless(mock.url, 8, "6s", "--stop-timeout", "5")
        )
    assert run.returncode == 0, run.stderr[-2000:]
    by_name = run.summary["requests"]
    assert by_name["chat"]["failures"] == 0 and by_name["chat-thinking"]["failures"] == 0
    thinking = [r for r in run.records if r["name"] == "chat-thinking" and r["outcome"] == "success"]
    plain = [r for r in run.records if r["name"] == "chat" and r["outcome"] == "success"]
    assert thinking and plain
    # 20 chunks, the first 5 thinking: visible text starts 5 inter-token gaps after the first token
    assert all(r["ttfc_ms"] - r["ttft_ms"] >= 45.0 for r in thinking)
    assert all(r["ttfc_ms"] == r["ttft_ms"] for r in plain)
    assert {r["output_tokens"] for r in thinking + plain} == {20}
    assert {r["served_model"] for r in thinking} == {"claude-sonnet-4-5"}


def test_the_responses_locustfile_measures_the_reasoning_summary_before_the_text(tmp_path: Path) -> None:
    with MockProcess(["--ttft-ms", "50", "--itl-ms", "10", "--output-tokens", "20"]) as mock:
        locustfile = ROOT / "locustfiles" / "responses.py"
        run = run_locust(locustfile, tmp_path, headless(mock.url, 8, "6s", "--stop-timeout", "5"))
    assert run.returncode == 0, run.stderr[-2000:]
    by_name = run.summary["requests"]
    assert by_name["responses"]["failures"] == 0 and by_name["responses-reasoning"]["failures"] == 0
    reasoning = [r for r in run.records if r["name"] == "responses-reasoning" and r["outcome"] == "success"]
    plain = [r for r in run.records if r["name"] == "responses" and r["outcome"] == "success"]
    assert reasoning and plain
    # a first token whose read also held later tokens carries that read's (later) stamp, an upper
    # bound the record marks: judge the reasoning gap on the first tokens that arrived alone
    alone = [r for r in reasoning if not r["first_token_shared_read"]]
    assert len(alone) >= len(reasoning) / 2, [r["first_token_shared_read"] for r in reasoning]
    # 5 reasoning chunks 10 ms apart come first (50 ms); the mock's own scheduling may shift a chunk by
    # a few ms on a busy machine, so the bound is 3.5 gaps, well above 0 (TTFC = TTFT without reasoning)
    gaps = sorted(r["ttfc_ms"] - r["ttft_ms"] for r in alone)
    assert gaps and gaps[0] >= 35.0 and statistics.median(gaps) >= 45.0, gaps[:5]
    assert all(r["ttfc_ms"] == r["ttft_ms"] for r in plain)
    assert {r["output_tokens"] for r in reasoning + plain} == {20}


def test_the_azure_locustfile_chats_and_embeds_on_deployment_urls(tmp_path: Path) -> None:
    with MockProcess(
        ["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "8", "--api-key", "az-key"]
    ) as mock:
        run = run_locust(
            ROOT / "locustfiles" / "azure.py",
            tmp_path,
            # 20 users: embeddings have weight 1 of 4, and 4 users (~8 draws) left them out ~10 % of runs
            headless(mock.url, 20, "4s", "--stop-timeout", "5"),
            env={"AZURE_OPENAI_API_KEY": "az-key"},
        )
        served = mock_stats(mock.url)
    assert run.returncode == 0, run.stderr[-2000:]
    by_name = run.summary["requests"]
    assert by_name["chat"]["count"] > 0 and by_name["chat"]["failures"] == 0
    assert by_name["embeddings"]["count"] > 0 and by_name["embeddings"]["failures"] == 0
    assert set(served["requests"]) >= {
        "/openai/deployments/{deployment}/chat/completions",
        "/openai/deployments/{deployment}/embeddings",
    }


def test_the_completions_locustfile_runs(tmp_path: Path) -> None:
    with MockProcess(["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "200"]) as mock:
        run = run_locust(
            ROOT / "locustfiles" / "completions.py",
            tmp_path,
            headless(mock.url, 4, "3s", "--stop-timeout", "5"),
        )
    assert run.returncode == 0, run.stderr[-2000:]
    records = [r for r in run.records if r["outcome"] == "success"]
    assert len(records) > 10
    assert {(r["output_tokens"], r["output_tokens_source"], r["finish_reason"]) for r in records} == {
        (128, "usage", "length")
    }
