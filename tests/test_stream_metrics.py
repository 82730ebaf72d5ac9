"""Metric derivation from synthetic bytes and timestamps: no sockets, no clock."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from locust_aiapi import (
    FailureKind,
    Outcome,
    RequestKind,
    RequestRecord,
    TokenSource,
    chunk_gaps_ms,
    e2e_ms,
    itl_ms,
    output_tokens_per_s,
    tpot_ms,
    ttfc_ms,
    ttft_ms,
)
from locust_aiapi._stream import StreamRecorder
from locust_aiapi.dialects import OPENAI

START = 100.0  # perf_counter seconds; all times below are START + offset


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    body.update(extra)
    return b"data: " + orjson.dumps(body) + b"\n\n"


ROLE = chunk({"role": "assistant", "content": ""})
DONE = b"data: [DONE]\n\n"


def usage(completion: int, prompt: int = 9) -> bytes:
    return chunk(None, usage={"prompt_tokens": prompt, "completion_tokens": completion})


def replay(timeline: list[tuple[float, bytes]], end_at: float) -> RequestRecord:
    """Feed (offset seconds, bytes) pairs as the I/O loop would; return the finished record."""
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=0.0, start_s=START)
    recorder = StreamRecorder(record, OPENAI.stream_parser())
    for offset, data in timeline:
        recorder.feed(data, START + offset)
    recorder.end(START + end_at)
    return record


def test_role_only_first_chunk_does_not_count_as_first_token() -> None:
    record = replay(
        [
            (0.050, ROLE),
            (0.200, chunk({"content": "Hello"})),
            (0.220, chunk({"content": " world"})),
            (0.240, chunk({}, finish="stop")),
            (0.241, usage(2)),
            (0.242, DONE),
        ],
        end_at=0.250,
    )
    assert record.outcome is Outcome.SUCCESS
    assert ttft_ms(record) == pytest.approx(200.0)
    assert ttfc_ms(record) == pytest.approx(200.0)
    assert itl_ms(record) == pytest.approx(20.0)
    assert tpot_ms(record) == pytest.approx(50.0)  # (250 - 200) / (2 - 1)
    assert e2e_ms(record) == pytest.approx(250.0)
    assert record.output_tokens == 2 and record.output_tokens_source is TokenSource.USAGE
    assert record.prompt_tokens == 9
    assert chunk_gaps_ms(record) == pytest.approx([20.0])


def test_multi_token_chunks_use_usage_tokens_for_itl() -> None:
    # 3 chunks carrying 4 + 4 + 2 = 10 tokens; ITL = (last - first) / (10 - 1)
    record = replay(
        [
            (0.0, ROLE),
            (0.300, chunk({"content": "a b c d"})),
            (0.340, chunk({"content": " e f g h"})),
            (0.390, chunk({"content": " i j"}, finish="stop")),
            (0.391, usage(10)),
            (0.392, DONE),
        ],
        end_at=0.392,
    )
    assert ttft_ms(record) == pytest.approx(300.0)
    assert itl_ms(record) == pytest.approx(90.0 / 9)
    assert output_tokens_per_s(record) == pytest.approx(9 / 0.090)
    assert len(record.token_chunk_times_s) == 3


def test_reasoning_before_content_separates_ttft_from_first_content() -> None:
    record = replay(
        [
            (0.010, ROLE),
            (0.150, chunk({"reasoning_content": "Let me think"})),
            (0.170, chunk({"reasoning_content": " about it"})),
            (0.400, chunk({"content": "Answer"})),
            (0.420, chunk({}, finish="stop")),
            (0.421, DONE),
        ],
        end_at=0.421,
    )
    assert ttft_ms(record) == pytest.approx(150.0)
    assert ttfc_ms(record) == pytest.approx(400.0)
    # no usage: tokens counted, one per token-carrying chunk
    assert record.output_tokens == 3 and record.output_tokens_source is TokenSource.COUNTED
    assert itl_ms(record) == pytest.approx(250.0 / 2)


def test_azure_filter_and_role_chunks_are_not_tokens() -> None:
    filter_chunk = chunk(None, prompt_filter_results=[{"prompt_index": 0}])
    record = replay(
        [
            (0.020, filter_chunk),
            (0.030, ROLE),
            (0.250, chunk({"content": "Hi"}, finish="stop")),
            (0.251, DONE),
        ],
        end_at=0.260,
    )
    assert ttft_ms(record) == pytest.approx(250.0)
    assert record.output_tokens == 1
    assert itl_ms(record) is None and tpot_ms(record) is None  # undefined for one token


def test_empty_content_after_the_role_chunk_is_a_token() -> None:
    # llama-cpp-python: no usage, one chunk per token, "" for a token that is not yet a character
    record = replay(
        [
            (0.030, chunk({"role": "assistant"})),
            (0.040, chunk({"content": ""})),
            (0.250, chunk({"content": "Hi"})),
            (0.260, chunk({}, finish="stop")),
            (0.261, DONE),
        ],
        end_at=0.270,
    )
    assert ttft_ms(record) == pytest.approx(40.0)
    assert ttfc_ms(record) == pytest.approx(250.0)  # visible text came later
    assert record.output_tokens == 2 and record.output_tokens_source is TokenSource.COUNTED
    assert itl_ms(record) == pytest.approx(210.0)
    assert record.token_chunk_times_s == [START + 0.040, START + 0.250]


def test_several_events_in_one_read_share_the_arrival_time() -> None:
    record = replay(
        [
            (0.100, ROLE + chunk({"content": "x"}) + chunk({"content": "y"})),
            (0.150, chunk({}, "stop") + DONE),
        ],
        end_at=0.150,
    )
    assert record.token_chunk_times_s == [START + 0.100, START + 0.100]
    assert ttft_ms(record) == pytest.approx(100.0)


def test_event_split_across_reads_is_stamped_when_it_completes() -> None:
    data = chunk({"content": "token"})
    record = replay(
        [(0.0, ROLE), (0.100, data[:10]), (0.180, data[10:]), (0.2, chunk({}, "stop") + DONE)],
        end_at=0.2,
    )
    assert ttft_ms(record) == pytest.approx(180.0)


@pytest.mark.parametrize(
    ("timeline", "kind"),
    [
        ([ROLE, chunk({"content": "partial"})], FailureKind.TRUNCATED),
        (
            [ROLE, chunk({"content": "a"}), b'data: {"error": {"message": "overloaded"}}\n\n'],
            FailureKind.STREAM_ERROR,
        ),
        ([ROLE, b"data: {not json\n\n", chunk({}, "stop"), DONE], FailureKind.PROTOCOL_ERROR),
        ([ROLE, chunk({}, "stop"), DONE], FailureKind.EMPTY_RESPONSE),
        ([b'{"id": "chatcmpl-1", "choices": []}'], FailureKind.PROTOCOL_ERROR),
    ],
    ids=["truncated", "in-stream-error", "invalid-json", "empty", "not-sse"],
)
def test_failed_streams_get_their_kind(timeline: list[bytes], kind: FailureKind) -> None:
    record = replay([(0.01 * i, data) for i, data in enumerate(timeline)], end_at=1.0)
    assert record.outcome is Outcome.FAILURE
    assert record.failure_kind is kind
    assert record.failure_message


def test_finish_reason_without_done_is_a_complete_stream() -> None:
    record = replay([(0.1, ROLE), (0.2, chunk({"content": "a"})), (0.3, chunk({}, "length"))], end_at=0.3)
    assert record.outcome is Outcome.SUCCESS
    assert record.finish_reason == "length"
