"""Cached input tokens (issue 11): each dialect's report of them, the record and JSONL, the summary's
mergeable sum, the cost at the cached-input price, and the mock reporting its prefix-cache hits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from geventhttpclient.client import HTTPClientPool

from locust_aiapi import RetryPolicy
from locust_aiapi._client import AIClient
from locust_aiapi._errors import ProtocolError
from locust_aiapi._jsonl import record_to_dict
from locust_aiapi._pricing import DEFAULT_PRICES, Price, cost_report, load_prices
from locust_aiapi._records import RequestKind, RequestRecord, Usage
from locust_aiapi._requests import ChatRequest
from locust_aiapi._sse import SSEDecoder
from locust_aiapi._summary import LLMSummary, NameStats
from locust_aiapi.dialects import ANTHROPIC, OPENAI, OPENAI_RESPONSES, ChatStreamParser
from locust_aiapi.dialects.openai_stream import OpenAIChatStream
from locust_aiapi.mock import MockProcess


def _usage_event(usage: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps({"id": "c", "choices": [], "usage": usage}) + b"\n\n"


OPENAI_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 30,
    "total_tokens": 1230,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
}
CONTENT = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n'
STREAM = CONTENT + _usage_event(OPENAI_USAGE) + b"data: [DONE]\n\n"


def _parse(pieces: list[bytes]) -> OpenAIChatStream:
    decoder, parser = SSEDecoder(), OpenAIChatStream()
    for piece in pieces:
        for event in decoder.feed(piece):
            parser.feed(event)
    for event in decoder.end():
        parser.feed(event)
    return parser


def test_openai_stream_reports_cached_tokens_whole_byte_by_byte_and_with_trailing_data() -> None:
    expected = Usage(1200, 30, 1230, cached_prompt_tokens=1024)
    trailing = _usage_event({**OPENAI_USAGE, "prompt_tokens_details": {"cached_tokens": 5}})
    for pieces in (
        [STREAM],
        [STREAM[i : i + 1] for i in range(len(STREAM))],
        [STREAM, trailing],  # after [DONE]: ignored
    ):
        parser = _parse(pieces)
        assert parser.usage == expected and parser.protocol_error is None


@pytest.mark.parametrize(
    ("usage", "cached"),
    [
        ({"prompt_tokens": 9}, None),  # not reported: unknown, not 0
        ({"prompt_tokens": 9, "prompt_tokens_details": None}, None),
        ({"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 0}}, 0),
        ({"prompt_tokens": 9, "prompt_cache_hit_tokens": 7, "prompt_cache_miss_tokens": 2}, 7),  # DeepSeek
    ],
)
def test_openai_completion_reads_cached_tokens_in_each_spelling(
    usage: dict[str, Any], cached: int | None
) -> None:
    body = orjson.dumps({"choices": [{"index": 0, "message": {"content": "x"}}], "usage": usage})
    completion = OPENAI.parse_chat_response(body)
    assert completion.usage is not None and completion.usage.cached_prompt_tokens == cached


@pytest.mark.parametrize(
    "details", [{"cached_tokens": -1}, {"cached_tokens": 2**40}, {"cached_tokens": "3"}, [3]]
)
def test_an_invalid_cached_count_is_a_protocol_error(details: object) -> None:
    parser = _parse([_usage_event({"prompt_tokens": 9, "prompt_tokens_details": details})])
    assert parser.protocol_error is not None and parser.usage is None


def test_anthropic_and_responses_answers_report_their_cached_tokens() -> None:
    message = {
        "type": "message",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 900, "cache_creation_input_tokens": 90,
                  "output_tokens": 4},
    }  # fmt: skip
    usage = ANTHROPIC.parse_chat_response(orjson.dumps(message)).usage
    # writes are prompt, not cached: counted apart, for their own price
    assert usage == Usage(1000, 4, 1004, cached_prompt_tokens=900, cache_write_prompt_tokens=90)
    response = {
        "object": "response",
        "status": "completed",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "ok"}]}],
        "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 32}, "output_tokens": 2,
                  "total_tokens": 52},
    }  # fmt: skip
    assert OPENAI_RESPONSES.parse_chat_response(orjson.dumps(response)).usage == Usage(50, 2, 52, 32)


def _record(prompt: int, cached: int | None, output: int, model: str = "gpt-4.1") -> RequestRecord:
    record = RequestRecord("chat", RequestKind.CHAT, model, True, 1_700_000_000.0, 10.0, end_s=11.0)
    record.prompt_tokens, record.cached_prompt_tokens, record.output_tokens = prompt, cached, output
    return record


def _whole_and_merged(records: list[RequestRecord]) -> tuple[NameStats, NameStats]:
    """One NameStats of all the records, and one merged from two halves sent over the wire."""
    whole, first, second = NameStats(), NameStats(), NameStats()
    for index, record in enumerate(records):
        whole.add(record)
        (first if index % 2 else second).add(record)
    first.merge(NameStats.from_dict(orjson.loads(orjson.dumps(second.to_dict()))))
    return whole, first


def test_the_summary_sums_cached_tokens_and_merges_them_exactly() -> None:
    records = [_record(1000, 800, 10), _record(500, None, 5), _record(300, 0, 3), _record(2000, 1536, 20)]
    whole, first = _whole_and_merged(records)
    assert whole.cached_prompt_tokens == first.cached_prompt_tokens == 2336
    assert whole.report_row()["cached_prompt_tokens"] == 2336 and whole.report_row()["prompt_tokens"] == 3800
    assert record_to_dict(records[0])["cached_prompt_tokens"] == 800
    assert record_to_dict(records[1])["cached_prompt_tokens"] is None


def test_the_cost_prices_cached_tokens_at_the_cached_input_price() -> None:
    summary = LLMSummary()
    for record in (
        _record(1_000_000, 750_000, 100_000),
        _record(3_000_000, 1_000_000, 0, "claude-sonnet-4-5"),
    ):
        summary.add(record)
    summary.add(_record(1000, 2000, 0, "broken"))  # more cached than sent: capped at what was sent
    report = cost_report(summary, {**DEFAULT_PRICES, "broken": Price(1.0, 1.0)}, None)
    gpt = report["models"]["gpt-4.1"]
    # 250K uncached x $2 + 750K cached x $0.50 + 100K output x $8 per million
    assert gpt["cost_usd"] == pytest.approx(0.5 + 0.375 + 0.8)
    assert (gpt["cached_prompt_tokens"], gpt["cached_input_usd_per_mtok"]) == (750_000, 0.5)
    claude = report["models"]["claude-sonnet-4-5"]
    assert claude["cost_usd"] == pytest.approx(2 * 3.0 + 1 * 0.30)  # cache reads at 0.1x the input price
    assert report["models"]["broken"]["cached_prompt_tokens"] == 1000
    assert report["models"]["broken"]["cost_usd"] == pytest.approx(1000 / 1e6)
    assert report["total_usd"] == pytest.approx(1.675 + 6.3 + 0.001)


def test_default_cached_prices_and_a_pricing_file_with_cached_input(tmp_path: Path) -> None:
    cached = {model: DEFAULT_PRICES[model].cached_input_usd_per_mtok for model in
              ("gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-flash", "deepseek-v3.2")}  # fmt: skip
    assert cached == {
        "gpt-4.1": 0.5,
        "claude-sonnet-4-5": 0.3,
        "gemini-2.5-flash": 0.03,
        "deepseek-v3.2": 0.028,
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"a": {"input": 1, "output": 2, "cached_input": 0.25}, "b": {"input": 4}}))
    prices = load_prices(str(path))
    assert prices["a"] == Price(1.0, 2.0, 0.25) and prices["a"].cached_usd_per_mtok == 0.25
    assert prices["b"].cached_usd_per_mtok == 4.0  # no cached price: cached tokens cost the input price
    for bad in ({"cached_input": 1}, {"input": 1, "cached_input": -1}, {"input": 1, "cache": 1}):
        path.write_text(json.dumps({"m": bad}))
        with pytest.raises(ValueError, match="'m'"):
            load_prices(str(path))


@pytest.mark.parametrize("stream", [True, False])
def test_the_mock_reports_its_prefix_cache_hits_and_the_record_carries_them(stream: bool) -> None:
    shared = "abc " * 400  # 400 tokens to the mock, 25 whole cache blocks
    pool = HTTPClientPool(network_timeout=10.0, connection_timeout=5.0, concurrency=2)
    reported: list[RequestRecord] = []
    client = AIClient(pool, {}, OPENAI, RetryPolicy(), reported.append)
    try:
        with MockProcess(["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "3"]) as mock:
            url = mock.url + "/v1/chat/completions"
            results = [
                client.chat(ChatRequest("chat", url, "m", [{"role": "user", "content": shared + q}], stream))
                for q in ("first question", "second question")
            ]
    finally:
        pool.close()
    cold, warm = (result.record for result in results)
    assert cold.ok and warm.ok, (cold.failure_message, warm.failure_message)
    assert cold.cached_prompt_tokens == 0
    assert warm.prompt_tokens is not None and warm.cached_prompt_tokens is not None
    assert 384 <= warm.cached_prompt_tokens < warm.prompt_tokens  # the shared blocks, not the question
    assert results[1].usage is not None and results[1].usage.cached_prompt_tokens == warm.cached_prompt_tokens
    assert reported == [cold, warm]


def test_anthropic_cache_writes_reach_the_record_the_jsonl_and_the_merged_summary() -> None:
    def written(prompt: int, writes: int | None) -> RequestRecord:
        record = _record(prompt, 0, 1, "claude-sonnet-4-5")
        record.cache_write_prompt_tokens = writes
        return record

    records = [written(5000, 4096), written(900, None), written(5000, 0), written(7000, 2048)]
    whole, first = _whole_and_merged(records)
    assert whole.cache_write_prompt_tokens == first.cache_write_prompt_tokens == 6144
    assert whole.report_row()["cache_write_prompt_tokens"] == 6144
    assert record_to_dict(records[0])["cache_write_prompt_tokens"] == 4096
    assert record_to_dict(records[1])["cache_write_prompt_tokens"] is None


def test_the_cost_prices_cache_writes_at_the_cache_write_price() -> None:
    summary = LLMSummary()
    claude = _record(4_000_000, 1_000_000, 0, "claude-sonnet-4-5")
    claude.cache_write_prompt_tokens = 2_000_000
    gpt = _record(1_000_000, 0, 0)  # OpenAI bills no writes: a count it never sends is no surcharge
    gpt.cache_write_prompt_tokens = 500_000
    broken = _record(1000, 600, 0, "broken")
    broken.cache_write_prompt_tokens = 1000  # more than the uncached rest: capped at it
    for record in (claude, gpt, broken):
        summary.add(record)
    report = cost_report(summary, {**DEFAULT_PRICES, "broken": Price(1.0, 1.0, 0.0, 10.0)}, None)
    row = report["models"]["claude-sonnet-4-5"]
    # 1M plain x $3 + 1M reads x $0.30 + 2M 5-minute writes x $3.75 per million
    assert row["cost_usd"] == pytest.approx(3.0 + 0.3 + 7.5)
    assert (row["cache_write_prompt_tokens"], row["cache_write_input_usd_per_mtok"]) == (2_000_000, 3.75)
    assert report["models"]["gpt-4.1"]["cache_write_input_usd_per_mtok"] == 2.0  # the input price
    assert report["models"]["gpt-4.1"]["cost_usd"] == pytest.approx(2.0)
    assert report["models"]["broken"]["cache_write_prompt_tokens"] == 400
    assert report["models"]["broken"]["cost_usd"] == pytest.approx(400 * 10.0 / 1e6)


def test_a_pricing_file_sets_the_cache_write_price(tmp_path: Path) -> None:
    assert DEFAULT_PRICES["claude-sonnet-4-5"].cache_write_usd_per_mtok == 3.75
    assert DEFAULT_PRICES["gpt-4.1"].cache_write_input_usd_per_mtok is None
    path = tmp_path / "prices.json"
    # the 1-hour cache's writes cost 2x input: a user who uses it says so
    path.write_text(json.dumps({"claude-sonnet-4-5": {"input": 3, "output": 15, "cache_write_input": 6}}))
    price = load_prices(str(path))["claude-sonnet-4-5"]
    assert price == Price(3.0, 15.0, None, 6.0) and price.cached_usd_per_mtok == 3.0
    for bad in ({"input": 1, "cache_write_input": -1}, {"input": 1, "cache_write_input": "2"}):
        path.write_text(json.dumps({"m": bad}))
        with pytest.raises(ValueError, match="'m' cache_write_input"):
            load_prices(str(path))


HOUR_USAGE = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 3000,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
    "output_tokens": 1,
}


def _anthropic_stream(start_usage: dict[str, Any], end_usage: dict[str, Any]) -> bytes:
    def event(kind: str, **fields: Any) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"

    message = {"id": "m", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [], "usage": start_usage}  # fmt: skip
    return (
        event("message_start", message=message)
        + event("content_block_delta", index=0, delta={"type": "text_delta", "text": "ok"})
        + event("message_delta", delta={"stop_reason": "end_turn"}, usage=end_usage)
        + event("message_stop")
    )


def _anthropic_parser(pieces: list[bytes]) -> ChatStreamParser:
    decoder, parser = SSEDecoder(), ANTHROPIC.stream_parser()
    for piece in pieces:
        for event in decoder.feed(piece):
            parser.feed(event)
    return parser


def _parse_anthropic(pieces: list[bytes]) -> Usage | None:
    parser = _anthropic_parser(pieces)
    assert parser.protocol_error is None
    return parser.usage


def test_anthropic_one_hour_writes_are_read_whole_byte_by_byte_and_with_trailing_data() -> None:
    expected = Usage(3010, 7, 3017, cached_prompt_tokens=0, cache_write_prompt_tokens=3000,
                     cache_write_1h_prompt_tokens=2000)  # fmt: skip
    totals = {key: value for key, value in HOUR_USAGE.items() if key != "cache_creation"}
    for start, delta in (
        (HOUR_USAGE, {"output_tokens": 7}),  # as the API sends it: the breakdown in message_start
        (HOUR_USAGE, {**totals, "output_tokens": 7}),  # message_delta repeats the totals only
        ({**HOUR_USAGE, "cache_creation": None}, {**HOUR_USAGE, "output_tokens": 7}),  # or all, last
        ({**totals, "cache_creation_input_tokens": None}, {**HOUR_USAGE, "cache_creation_input_tokens": None,
                                                           "output_tokens": 7}),  # only the breakdown
    ):  # fmt: skip
        stream = _anthropic_stream(start, delta)
        assert _parse_anthropic([stream]) == expected, (start, delta)
        assert _parse_anthropic([stream[i : i + 1] for i in range(len(stream))]) == expected
        assert _parse_anthropic([stream + b'event: ping\ndata: {"type": "ping"}\n\n']) == expected
    # a later breakdown replaces the earlier whole (the lifetime it leaves out had none); the total stays
    later = {"cache_creation": {"ephemeral_5m_input_tokens": 3000}, "output_tokens": 7}
    usage = _parse_anthropic([_anthropic_stream(HOUR_USAGE, later)])
    assert usage is not None and (usage.prompt_tokens, usage.cache_write_1h_prompt_tokens) == (3010, 0)


@pytest.mark.parametrize(
    ("usage", "prompt", "writes", "hour"),
    [
        (HOUR_USAGE, 3010, 3000, 2000),
        ({**HOUR_USAGE, "cache_creation_input_tokens": None}, 3010, 3000, 2000),  # the breakdown's sum
        ({**HOUR_USAGE, "cache_creation_input_tokens": 500}, 510, 500, 500),  # more than its total: capped
        ({**HOUR_USAGE, "cache_creation": {"ephemeral_5m_input_tokens": 4}}, 3010, 3000, 0),  # no 1 h
        ({**HOUR_USAGE, "cache_creation": {}}, 3010, 3000, 0),
        (
            {
                **HOUR_USAGE,
                "cache_creation_input_tokens": None,  # the sum is held to the counts' range
                "cache_creation": {"ephemeral_5m_input_tokens": 2**31 - 1, "ephemeral_1h_input_tokens": 9},
            },
            2**31 + 9,
            2**31 - 1,
            9,
        ),
        ({"input_tokens": 5, "output_tokens": 1}, 5, None, None),
    ],
)
def test_anthropic_answers_break_the_writes_down_by_cache_lifetime(
    usage: dict[str, Any], prompt: int, writes: int | None, hour: int | None
) -> None:
    message = {"type": "message", "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
               "usage": usage}  # fmt: skip
    parsed = ANTHROPIC.parse_chat_response(orjson.dumps(message)).usage
    assert parsed is not None
    assert (parsed.cache_write_prompt_tokens, parsed.cache_write_1h_prompt_tokens) == (writes, hour)
    assert parsed.prompt_tokens == prompt


@pytest.mark.parametrize(
    "breakdown", [[1], "2000", {"ephemeral_1h_input_tokens": -1}, {"ephemeral_5m_input_tokens": 2**40}]
)
def test_a_malformed_write_breakdown_is_a_protocol_error(breakdown: object) -> None:
    usage = {**HOUR_USAGE, "cache_creation": breakdown}
    parser = _anthropic_parser([_anthropic_stream(usage, {"output_tokens": 1})])
    assert "usage.cache_creation" in str(parser.protocol_error)
    message = {"type": "message", "content": [], "stop_reason": "end_turn", "usage": usage}
    with pytest.raises(ProtocolError, match=r"usage\.cache_creation"):
        ANTHROPIC.parse_chat_response(orjson.dumps(message))


def test_one_hour_writes_reach_the_jsonl_and_the_merged_summary_and_cost_their_own_price() -> None:
    def written(prompt: int, writes: int, hour: int | None) -> RequestRecord:
        record = _record(prompt, 0, 0, "claude-sonnet-4-5")
        record.cache_write_prompt_tokens, record.cache_write_1h_prompt_tokens = writes, hour
        return record

    records = [written(2_000_000, 1_500_000, 1_000_000), written(1_000_000, 500_000, None)]
    whole, merged = _whole_and_merged(records)
    assert whole.cache_write_1h_prompt_tokens == merged.cache_write_1h_prompt_tokens == 1_000_000
    assert whole.report_row()["cache_write_1h_prompt_tokens"] == 1_000_000
    assert [record_to_dict(record)["cache_write_1h_prompt_tokens"] for record in records] == [1_000_000, None]
    summary = LLMSummary()
    for record in records:
        summary.add(record)
    row = cost_report(summary, DEFAULT_PRICES, None)["models"]["claude-sonnet-4-5"]
    # 1M plain x $3 + 1M 5-minute writes x $3.75 + 1M 1-hour writes x $6 per million
    assert row["cost_usd"] == pytest.approx(3.0 + 3.75 + 6.0)
    assert (row["cache_write_1h_prompt_tokens"], row["cache_write_1h_input_usd_per_mtok"]) == (1_000_000, 6.0)
    flat = cost_report(summary, {"claude-sonnet-4-5": Price(3.0, 15.0, None, 3.75)}, None)
    # no 1-hour price: those writes cost the cache-write price
    assert flat["models"]["claude-sonnet-4-5"]["cost_usd"] == pytest.approx(3.0 + 2 * 3.75)


def test_a_pricing_file_sets_the_one_hour_write_price(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"m": {"input": 1, "cache_write_input": 1.25, "cache_write_1h_input": 2}}))
    price = load_prices(str(path))["m"]
    assert price == Price(1.0, 1.0, None, 1.25, 2.0) and price.cache_write_1h_usd_per_mtok == 2.0
    path.write_text(json.dumps({"m": {"input": 1, "cache_write_1h_input": "2"}}))
    with pytest.raises(ValueError, match="'m' cache_write_1h_input"):
        load_prices(str(path))


def test_the_mock_breaks_its_anthropic_writes_down_and_the_record_carries_it() -> None:
    pool = HTTPClientPool(network_timeout=10.0, connection_timeout=5.0, concurrency=2)
    client = AIClient(pool, {}, ANTHROPIC, RetryPolicy(), lambda _record: None)
    try:
        with MockProcess(["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "3"]) as mock:
            url = mock.url + "/v1/messages"
            messages = [{"role": "user", "content": "hi"}]
            results = [
                client.chat(ChatRequest("chat", url, "claude-sonnet-4-5", messages, stream))
                for stream in (True, False)
            ]
    finally:
        pool.close()
    for result in results:
        assert result.record.ok, result.record.failure_message
        assert (result.record.cache_write_prompt_tokens, result.record.cache_write_1h_prompt_tokens) == (0, 0)
