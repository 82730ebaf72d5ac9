from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from locust_aiapi import _metrics
from locust_aiapi._goodput import SLO, GoodputCounter
from locust_aiapi._histogram import LogHistogram
from locust_aiapi._jsonl import JsonlWriter, record_to_dict
from locust_aiapi._records import FailureKind, Outcome, RequestKind, RequestRecord, TokenSource
from locust_aiapi._report_types import LATENCY_METRICS
from locust_aiapi._run_state import RunState
from locust_aiapi._summary import LLMSummary, NameStats
from locust_aiapi._timeseries import TimeSeries
from locust_aiapi.render.console import AGGREGATED, render_summary

EPOCH = 1_700_000_000.0  # wall clock of the first request
CLOCK = 1024.0  # perf_counter at the first request; powers of two keep the arithmetic exact
METRIC_KEYS = {"mean", "p50", "p90", "p95", "p99", "max", "min", "count"}


def chat_ok(
    offset_s: float,
    *,
    ttft_s: float,
    tokens: int,
    gap_s: float,
    tail_s: float,
    prompt: int,
    name: str = "chat",
    attempts: int = 1,
    first_attempt_e2e_ms: float | None = None,
) -> RequestRecord:
    start = CLOCK + offset_s
    times = [start + ttft_s + i * gap_s for i in range(tokens)]
    return RequestRecord(
        name=name,
        kind=RequestKind.CHAT,
        model="m",
        streamed=True,
        start_epoch_s=EPOCH + offset_s,
        start_s=start,
        end_s=times[-1] + tail_s,
        headers_s=start + ttft_s / 2,
        first_token_s=times[0],
        first_content_s=times[0],
        last_token_s=times[-1],
        token_chunk_times_s=times,
        output_tokens=tokens,
        output_tokens_source=TokenSource.USAGE,
        prompt_tokens=prompt,
        status_code=200,
        attempts=attempts,
        first_attempt_e2e_ms=first_attempt_e2e_ms,
    )


def failed(
    offset_s: float,
    duration_s: float,
    kind: FailureKind,
    *,
    name: str = "chat",
    status: int | None = None,
    **extra: Any,
) -> RequestRecord:
    start = CLOCK + offset_s
    record = RequestRecord(
        name=name,
        kind=RequestKind.CHAT,
        model="m",
        streamed=True,
        start_epoch_s=EPOCH + offset_s,
        start_s=start,
        end_s=start + duration_s,
        status_code=status,
        **extra,
    )
    record.fail(kind, "synthetic")
    return record


def embed_ok(offset_s: float, duration_s: float, prompt: int) -> RequestRecord:
    start = CLOCK + offset_s
    return RequestRecord(
        name="embed",
        kind=RequestKind.EMBEDDINGS,
        model="e",
        streamed=False,
        start_epoch_s=EPOCH + offset_s,
        start_s=start,
        end_s=start + duration_s,
        headers_s=start + duration_s / 2,
        prompt_tokens=prompt,
        status_code=200,
    )


def scenario() -> list[RequestRecord]:
    return [
        # chat: TTFT 250 ms, 11 tokens 62.5 ms apart, E2E 1000 ms
        chat_ok(0.0, ttft_s=0.25, tokens=11, gap_s=0.0625, tail_s=0.125, prompt=20),
        # chat: retried twice, TTFT 500 ms, 5 tokens 125 ms apart, E2E 1250 ms
        chat_ok(
            0.5,
            ttft_s=0.5,
            tokens=5,
            gap_s=0.125,
            tail_s=0.25,
            prompt=30,
            attempts=3,
            first_attempt_e2e_ms=150.0,
        ),
        # chat: 30 s timeout, the last request to end
        failed(1.0, 30.0, FailureKind.TIMEOUT),
        # chat: rate limited after one retry
        failed(1.25, 0.0625, FailureKind.RATE_LIMITED, status=429, attempts=2, first_attempt_e2e_ms=40.0),
        # chat: error inside a 200 stream after 3 tokens: tokens count, its TTFT does not
        failed(
            2.0,
            2.0,
            FailureKind.STREAM_ERROR,
            status=200,
            prompt_tokens=20,
            output_tokens=3,
            first_token_s=CLOCK + 2.0 + 1.5,
            first_content_s=CLOCK + 2.0 + 1.5,
            last_token_s=CLOCK + 2.0 + 1.75,
        ),
        embed_ok(3.0, 0.0625, prompt=8),
        failed(3.5, 0.125, FailureKind.SERVER_ERROR, name="embed", status=503),
    ]


def summary_of(records: list[RequestRecord]) -> LLMSummary:
    summary = LLMSummary()
    for record in records:
        summary.add(record)
    return summary


def test_chat_row_counts_tokens_and_failures() -> None:
    chat = summary_of(scenario()).by_name["chat"]
    assert (chat.requests, chat.successes, chat.failures) == (5, 2, 3)
    assert chat.failures_by_kind == {"timeout": 1, "rate_limited": 1, "stream_error": 1}
    assert chat.status_codes == {"200": 3, "429": 1}
    assert chat.rate_limited == 1
    assert chat.retries == 3
    assert (chat.prompt_tokens, chat.output_tokens, chat.success_output_tokens) == (70, 19, 16)
    assert chat.success_rate == 2 / 5
    assert (chat.first_start_epoch_s, chat.last_end_epoch_s) == (EPOCH, EPOCH + 31.0)
    assert chat.window_s == 31.0
    assert chat.aggregate_output_tokens_per_s == 16 / 31


def test_failed_requests_are_not_in_latency_histograms() -> None:
    chat = summary_of(scenario()).by_name["chat"]
    for name in LATENCY_METRICS:
        assert getattr(chat, name).count == 2, name
    assert (chat.ttft_ms.min, chat.ttft_ms.max, chat.ttft_ms.mean) == (250.0, 500.0, 375.0)
    assert (chat.e2e_ms.min, chat.e2e_ms.max) == (1000.0, 1250.0)  # not the 30 s timeout
    assert (chat.itl_ms.min, chat.itl_ms.max) == (62.5, 125.0)
    assert (chat.tpot_ms.min, chat.tpot_ms.max) == (75.0, 187.5)
    assert (chat.output_tokens_per_s.min, chat.output_tokens_per_s.max) == (8.0, 16.0)
    # first attempts of retried requests, whatever their final outcome
    assert (chat.first_attempt_e2e_ms.count, chat.first_attempt_e2e_ms.max) == (2, 150.0)


def test_embeddings_row_has_no_streaming_metrics() -> None:
    embed = summary_of(scenario()).by_name["embed"]
    assert (embed.requests, embed.successes, embed.failures_by_kind) == (2, 1, {"server_error": 1})
    assert (embed.prompt_tokens, embed.output_tokens) == (8, 0)
    assert embed.ttft_ms.count == embed.itl_ms.count == embed.output_tokens_per_s.count == 0
    assert (embed.e2e_ms.count, embed.e2e_ms.max) == (1, 62.5)
    assert embed.aggregate_output_tokens_per_s == 0.0
    assert embed.rate_limited == embed.retries == 0


def test_total_row_merges_every_name() -> None:
    total = summary_of(scenario()).total
    assert (total.requests, total.successes) == (7, 3)
    assert total.failures_by_kind == {"timeout": 1, "rate_limited": 1, "stream_error": 1, "server_error": 1}
    assert (total.prompt_tokens, total.output_tokens, total.retries) == (78, 19, 3)
    assert (total.e2e_ms.count, total.ttft_ms.count) == (3, 2)
    assert total.window_s == 31.0


def test_undefined_ratios_are_none() -> None:
    empty = NameStats()
    assert (empty.success_rate, empty.window_s, empty.aggregate_output_tokens_per_s) == (None, None, None)
    instant = NameStats()
    instant.add(failed(0.0, 0.0, FailureKind.CONNECTION_ERROR))
    assert instant.window_s == 0.0
    assert instant.aggregate_output_tokens_per_s is None
    assert instant.success_rate == 0.0


def test_broken_clock_never_raises() -> None:
    record = chat_ok(0.0, ttft_s=0.25, tokens=3, gap_s=0.0625, tail_s=0.0, prompt=1)
    record.end_s = 0.0  # never stamped
    stats = NameStats()
    stats.add(record)
    assert (stats.requests, stats.e2e_ms.count, stats.ttft_ms.count) == (1, 0, 1)
    assert stats.last_end_epoch_s == stats.first_start_epoch_s


def random_records(count: int, seed: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    kinds = list(FailureKind)
    records = []
    for i in range(count):
        offset = i * 0.01 + rng.random()
        name = rng.choice(["chat", "chat-long", "embed"])
        if rng.random() < 0.8:
            tokens = rng.randint(1, 400)
            records.append(
                chat_ok(
                    offset,
                    ttft_s=rng.lognormvariate(-1.5, 0.7),
                    tokens=tokens,
                    gap_s=rng.uniform(0.005, 0.05),
                    tail_s=rng.uniform(0, 0.01),
                    prompt=rng.randint(5, 900),
                    name=name,
                    attempts=rng.choice([1, 1, 1, 2]),
                )
            )
        else:
            kind = rng.choice(kinds)
            records.append(
                failed(offset, rng.uniform(0, 5), kind, name=name, status=rng.choice([None, 429, 500]))
            )
    return records


def assert_same_stats(merged: NameStats, whole: NameStats) -> None:
    merged_dict, whole_dict = merged.to_dict(), whole.to_dict()
    merged_histograms, whole_histograms = merged_dict.pop("histograms"), whole_dict.pop("histograms")
    assert merged_dict == whole_dict  # counts, tokens, dicts and window: exact
    for name, data in whole_histograms.items():
        assert merged_histograms[name]["sum"] == pytest.approx(data["sum"], rel=1e-12)
        assert {**merged_histograms[name], "sum": 0} == {**data, "sum": 0}
        qs = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]
        assert getattr(merged, name).quantiles(qs) == getattr(whole, name).quantiles(qs)


@pytest.mark.parametrize("records", [scenario(), random_records(3_000, seed=3)], ids=["scenario", "random"])
def test_merged_summaries_equal_one_summary(records: list[RequestRecord]) -> None:
    rng = random.Random(11)
    parts: list[list[RequestRecord]] = [[], []]
    for record in records:
        parts[rng.random() < 0.5].append(record)
    merged = LLMSummary()
    for part in parts:
        shipped = orjson.loads(orjson.dumps(summary_of(part).to_dict()))  # worker -> master
        merged.merge(LLMSummary.from_dict(shipped))
    whole = summary_of(records)
    assert sorted(merged.by_name) == sorted(whole.by_name)
    for name, stats in whole.by_name.items():
        assert_same_stats(merged.by_name[name], stats)
    assert_same_stats(merged.total, whole.total)


def test_dict_round_trip_is_exact() -> None:
    summary = summary_of(random_records(500, seed=5))
    restored = LLMSummary.from_dict(orjson.loads(orjson.dumps(summary.to_dict())))
    assert restored.by_key == summary.by_key
    assert restored.report_dict(datetime(2024, 1, 1, tzinfo=timezone.utc)) == summary.report_dict(
        datetime(2024, 1, 1, tzinfo=timezone.utc)
    )


def test_from_dict_rejects_foreign_data() -> None:
    with pytest.raises(ValueError):
        LLMSummary.from_dict({"format": 99, "rows": []})
    with pytest.raises(ValueError):
        NameStats.from_dict({"requests": 1})


def test_merge_rejects_histograms_of_other_accuracy() -> None:
    left, right = NameStats(), NameStats(ttft_ms=LogHistogram(0.01))
    with pytest.raises(ValueError):
        left.merge(right)


def test_report_dict_shape_and_full_precision() -> None:
    report = summary_of(scenario()).report_dict()
    decoded = orjson.loads(orjson.dumps(report))
    assert decoded == report
    assert datetime.fromisoformat(report["generated_at"]).tzinfo is not None
    assert list(report["requests"]) == ["chat", "embed"]
    chat, total = report["requests"]["chat"], report["total"]
    assert (chat["count"], chat["successes"], chat["failures"]) == (5, 2, 3)
    assert chat["failures_by_kind"] == {"rate_limited": 1, "stream_error": 1, "timeout": 1}
    assert (chat["prompt_tokens"], chat["output_tokens"], chat["total_tokens"]) == (70, 19, 89)
    assert (chat["retries"], chat["rate_limited"], chat["success_rate"]) == (3, 1, 0.4)
    assert chat["aggregate_output_tokens_per_s"] == 16 / 31  # 0.5161290322580645, not rounded
    for metric in LATENCY_METRICS:
        assert set(chat[metric]) == METRIC_KEYS
    assert chat["ttft_ms"]["mean"] == 375.0
    assert chat["ttft_ms"]["max"] == 500.0
    assert isinstance(chat["ttft_ms"]["p50"], float)
    assert report["requests"]["embed"]["ttft_ms"] == {**dict.fromkeys(METRIC_KEYS), "count": 0}
    assert (total["count"], total["failures"], total["total_tokens"]) == (7, 4, 97)


def test_render_table() -> None:
    records = scenario()
    records.append(embed_ok(4.0, 0.5, prompt=1))
    records[-1].name = "a-very-long-request-name-that-does-not-fit"
    table = render_summary(summary_of(records).report_dict())
    lines = table.splitlines()
    assert all(len(line) <= 120 for line in lines), max(map(len, lines))
    assert any(line.startswith("chat ") for line in lines)
    assert any(line.startswith("embed ") for line in lines)
    assert any(line.startswith(AGGREGATED) for line in lines)
    assert "a-very-long-req…" in table
    assert "Failures by kind" in table
    failure_rows = lines[lines.index("Failures by kind") :]
    assert any(row.split() == ["chat", "timeout", "1"] for row in failure_rows)
    assert any(row.split() == ["embed", "server_error", "1"] for row in failure_rows)
    assert any(row.split() == [AGGREGATED, "rate_limited", "1"] for row in failure_rows)
    chat_row = next(line for line in lines if line.startswith("chat ")).split()
    assert chat_row[1:5] == ["5", "3", "0", "40.0"]  # Reqs, Fails, Cancelled, Success %
    header = next(line for line in lines if line.startswith("Name ")).split()
    assert header[1:5] == ["Reqs", "Fails", "Canc", "Succ%"]
    assert chat_row[-2:] == ["19", "0.5"]  # output tokens, aggregate tokens/s


def test_render_table_without_failures_or_requests() -> None:
    only_ok = render_summary(summary_of([embed_ok(0.0, 0.0625, prompt=8)]).report_dict())
    assert "Failures by kind" not in only_ok
    empty = render_summary(LLMSummary().report_dict())
    assert AGGREGATED in empty
    assert "Failures by kind" not in empty


def test_cancelled_requests_are_counted_but_neither_success_nor_failure() -> None:
    summary = LLMSummary()
    summary.add(chat_ok(0.0, ttft_s=0.25, tokens=4, gap_s=0.01, tail_s=0.0, prompt=3))
    summary.add(failed(0.1, 0.2, FailureKind.TIMEOUT))
    cancelled = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=EPOCH + 1, start_s=CLOCK + 1)
    cancelled.outcome = Outcome.CANCELLED
    cancelled.end_s = CLOCK + 1.5
    summary.add(cancelled)
    row = summary.report_dict()["total"]
    assert row["count"] == 3 and row["cancelled"] == 1
    assert row["successes"] == 1 and row["failures"] == 1
    assert row["failures_by_kind"] == {"timeout": 1}
    assert row["success_rate"] == 0.5  # of the two requests that completed
    assert row["e2e_ms"]["count"] == 1


def test_run_state_derives_each_records_metrics_once_for_every_aggregate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The summary, the phase's rows, the time series, goodput and the JSONL all take one derivation,
    and each shows what it would have derived itself."""
    records = scenario()
    state = RunState(slo=SLO(ttft_ms=300.0, e2e_ms=1100.0), jsonl=JsonlWriter(str(tmp_path / "r.jsonl")))
    state.phases.enter(0, CLOCK - 1.0)
    calls: Counter[str] = Counter()

    def counting(name: str) -> Any:
        real = getattr(_metrics, name)

        def counted(record: RequestRecord) -> Any:
            calls[name] += 1
            return real(record)

        return counted

    names = ("ttft_ms", "ttfc_ms", "itl_ms", "tpot_ms", "e2e_ms", "output_tokens_per_s", "end_epoch_s")
    for name in names:
        monkeypatch.setattr(_metrics, name, counting(name))
    for record in records:
        state.record(record)
    assert calls == dict.fromkeys(names, len(records))
    monkeypatch.undo()

    by_itself_series, by_itself_goodput = TimeSeries(), GoodputCounter()
    for record in records:
        by_itself_series.add(record)
        by_itself_goodput.add(record, state.slo)
    assert state.summary.to_dict() == summary_of(records).to_dict()
    phase = NameStats()
    for record in records:
        phase.add(record)
    assert state.phases.take_report() == {"0": phase.to_dict()}
    assert state.series.take_report() == by_itself_series.take_report()
    assert state.goodput.take_report() == by_itself_goodput.take_report() == {"chat": [5, 1], "embed": [2, 1]}
    state.jsonl.close()  # type: ignore[union-attr]
    lines = (tmp_path / "r.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == [
        orjson.loads(orjson.dumps(record_to_dict(r))) for r in records
    ]
