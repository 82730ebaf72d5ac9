"""What a misbehaving or unusual server sends, from bytes to a record (sans-IO, no sockets).

Each stream is fed whole, byte by byte (or in small pieces when large) and followed by
trailing data: the record must be the same every way.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from locust_aiapi import FailureKind, Outcome, RequestKind, RequestRecord, TokenSource, itl_ms, ttft_ms
from locust_aiapi._errors import InvalidResponseError, ProtocolError
from locust_aiapi._stream import StreamRecorder
from locust_aiapi.dialects import OPENAI, OPENAI_EMBEDDINGS, OpenAIChatStream
from locust_aiapi.dialects.openai_stream import MAX_CHOICES_SCANNED, choice_zero

START = 100.0
DONE = b"data: [DONE]\n\n"
# after [DONE]: a token, a usage, an error and junk that must all be ignored
AFTER_DONE = (
    b'data: {"choices":[{"index":0,"delta":{"content":"late"}}],"usage":{"completion_tokens":99}}\n\n'
    b'data: {"error":{"message":"late error"}}\n\ndata: {not json\n\n'
)


def sse(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return sse({"object": "chat.completion.chunk", "choices": choices, **extra})


def pieces(stream: bytes) -> Iterator[list[bytes]]:
    yield [stream]
    size = 1 if len(stream) <= 20_000 else 4096
    yield [stream[i : i + size] for i in range(0, len(stream), size)]


def record_of(parts: list[bytes], **recorder_options: Any) -> RequestRecord:
    record = RequestRecord("chat", RequestKind.CHAT, "asked", True, start_epoch_s=0.0, start_s=START)
    recorder = StreamRecorder(
        record, OPENAI.stream_parser(), body_error=OPENAI.parse_body_error, **recorder_options
    )
    for position, part in enumerate(parts):
        if not recorder.feed(part, START + 0.001 * position):
            break
    recorder.end(START + 1.0)
    return record


def measured(record: RequestRecord) -> tuple[Any, ...]:
    """What the record says, with times replaced by whether they are set (pieces change them)."""
    return (
        record.outcome,
        record.failure_kind,
        record.failure_message,
        record.output_tokens,
        record.output_tokens_source,
        record.prompt_tokens,
        record.served_model,
        record.finish_reason,
        len(record.token_chunk_times_s),
        record.first_token_s is not None,
    )


def assert_same_every_way(stream: bytes, *, trailing: bytes = b"") -> RequestRecord:
    records = [record_of(parts) for parts in pieces(stream)]
    if trailing:
        records += [record_of([*parts, trailing]) for parts in pieces(stream)]
    first = measured(records[0])
    for record in records[1:]:
        assert measured(record) == first
    return records[0]


# -- servers without usage (llama-cpp-python) -------------------------------------------------


def llama_cpp_stream(tokens: list[str]) -> bytes:
    head = chunk({"role": "assistant"}, model="llama-3-8b-q4")
    body = b"".join(chunk({"content": token}, model="llama-3-8b-q4") for token in tokens)
    return head + body + chunk({}, "stop", model="llama-3-8b-q4") + DONE


def test_every_token_chunk_counts_when_there_is_no_usage_empty_text_included() -> None:
    tokens = ["" if i % 3 == 0 else f"t{i}" for i in range(64)]  # 22 of the 64 are empty
    record = assert_same_every_way(llama_cpp_stream(tokens), trailing=AFTER_DONE)
    assert record.outcome is Outcome.SUCCESS
    assert record.output_tokens == 64 and record.output_tokens_source is TokenSource.COUNTED
    assert len(record.token_chunk_times_s) == 64
    assert record.served_model == "llama-3-8b-q4" and record.model == "asked"


def test_ttft_and_itl_use_the_same_token_definition() -> None:
    stream_parts = [chunk({"role": "assistant"}), chunk({"content": ""}), chunk({"content": "a"})]
    stream_parts += [chunk({"content": ""}), chunk({}, "stop"), DONE]
    record = record_of(stream_parts)  # part i arrives at START + i ms
    assert ttft_ms(record) == pytest.approx(1.0)  # the empty chunk after the role chunk
    assert itl_ms(record) == pytest.approx(1.0)  # (3 ms - 1 ms) / (3 - 1)
    assert record.output_tokens == 3


def test_a_role_chunk_is_not_a_token_unless_it_carries_text() -> None:
    assert OpenAIChatStream().feed(_event(chunk({"role": "assistant", "content": ""}))) == 0
    assert OpenAIChatStream().feed(_event(chunk({"role": "assistant"}))) == 0
    assert OpenAIChatStream().feed(_event(chunk({"role": "assistant", "content": "Hi"}))) == 3


def _event(data: bytes) -> Any:
    from locust_aiapi._sse import SSEDecoder

    (event,) = SSEDecoder().feed(data)
    return event


# -- numbers from the server ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        ({"completion_tokens": 2**63 - 1}, "usage.completion_tokens"),
        ({"completion_tokens": -5}, "usage.completion_tokens"),
        ({"completion_tokens": True}, "usage.completion_tokens"),
        ({"completion_tokens": 3.0}, "usage.completion_tokens"),
        ({"completion_tokens": "3"}, "usage.completion_tokens"),
        ({"prompt_tokens": -1, "completion_tokens": 2}, "usage.prompt_tokens"),
        ({"completion_tokens": 2, "total_tokens": 2**31}, "usage.total_tokens"),
    ],
)
def test_an_invalid_usage_count_is_a_protocol_error_never_a_recorded_value(
    usage: dict[str, Any], field: str
) -> None:
    stream = chunk({"role": "assistant"}) + chunk({"content": "a"}) + chunk({"content": "b"}, "stop")
    record = assert_same_every_way(stream + chunk(None, usage=usage) + DONE, trailing=AFTER_DONE)
    assert record.failure_kind is FailureKind.PROTOCOL_ERROR
    assert record.failure_message == f"{field} is not an integer in 0..2147483647"
    assert record.output_tokens == 2 and record.output_tokens_source is TokenSource.COUNTED
    assert record.prompt_tokens is None


def test_the_largest_valid_count_is_kept() -> None:
    stream = chunk({"content": "a"}, "stop") + chunk(None, usage={"completion_tokens": 2**31 - 1}) + DONE
    record = assert_same_every_way(stream)
    assert record.ok and record.output_tokens == 2**31 - 1


@pytest.mark.parametrize("index", [True, False, -1, "0", 2**40, 1.0, [0]])
def test_an_invalid_choice_or_tool_call_index_is_a_protocol_error(index: object) -> None:
    bad_choice = sse({"choices": [{"index": index, "delta": {"content": "x"}}]})
    record = assert_same_every_way(chunk({"content": "a"}) + bad_choice + chunk({}, "stop") + DONE)
    assert record.failure_message == "choice index is not an integer in 0..2147483647"
    bad_call = chunk({"tool_calls": [{"index": index, "function": {"arguments": "{}"}}]})
    record = assert_same_every_way(bad_call + chunk({}, "tool_calls") + DONE)
    assert record.failure_message == "tool call index is not an integer in 0..2147483647"


def test_usage_is_checked_in_non_streamed_answers_and_embeddings_too() -> None:
    body = orjson.dumps(
        {"choices": [{"index": 0, "message": {"content": "x"}}], "usage": {"prompt_tokens": -1}}
    )
    with pytest.raises(ProtocolError, match=r"^usage.prompt_tokens is not an integer"):
        OPENAI.parse_chat_response(body)
    body = orjson.dumps({"data": [{"index": 0, "embedding": [0.5]}], "usage": {"prompt_tokens": 2**63}})
    with pytest.raises(ProtocolError, match=r"^usage.prompt_tokens is not an integer"):
        OPENAI_EMBEDDINGS.parse_response(
            body, expected_count=1, encoding_format="float", expected_dimensions=None
        )


def test_too_many_tool_calls_is_a_protocol_error() -> None:
    calls = b"".join(
        chunk({"tool_calls": [{"index": i, "function": {"arguments": "{}"}}]}) for i in range(200)
    )
    record = assert_same_every_way(calls + chunk({}, "tool_calls") + DONE)
    assert record.failure_message == "the answer has more than 128 tool calls"


# -- the end marker ---------------------------------------------------------------------------


def test_nothing_after_done_is_counted() -> None:
    stream = chunk({"content": "a"}) + chunk({}, "stop") + chunk(None, usage={"completion_tokens": 1}) + DONE
    record = assert_same_every_way(stream, trailing=AFTER_DONE)
    assert record.ok
    assert (record.output_tokens, len(record.token_chunk_times_s)) == (1, 1)
    parser = OpenAIChatStream()
    for part in (stream + AFTER_DONE).split(b"\n\n")[:-1]:
        parser.feed(_event(part + b"\n\n"))
    assert parser.text == "a" and parser.error is None and parser.protocol_error is None


# -- deeply nested JSON -----------------------------------------------------------------------


def nested_message(depth: int) -> bytes:
    return b'{"message":' * depth + b'"deep"' + b"}" * depth


def nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_a_600_level_error_in_a_stream_is_a_stream_error_not_a_recursion_error() -> None:
    stream = chunk({"content": "a"}) + b'data: {"error":' + nested_message(600) + b"}\n\n"
    record = assert_same_every_way(stream)
    assert record.failure_kind is FailureKind.STREAM_ERROR
    assert record.failure_message == "error in stream: (a JSON value nested too deeply to show)"
    assert record.output_tokens == 1  # what came before the error is kept


@pytest.mark.parametrize("depth", [600, 2000])
def test_deep_json_in_a_chunk_is_a_protocol_error(depth: int) -> None:
    deep_content = b'data: {"choices":[{"index":0,"delta":{"content":' + nested_list(depth) + b"}}]}\n\n"
    deep_finish = b'data: {"choices":[{"index":0,"finish_reason":' + nested_list(depth) + b"}]}\n\n"
    record = assert_same_every_way(deep_content + deep_finish + DONE)
    assert record.failure_kind is FailureKind.PROTOCOL_ERROR
    if depth == 600:  # orjson parses it; the value is simply not a string
        assert record.failure_message == "finish_reason is not a string"
    else:  # beyond orjson's 1,024 levels
        assert record.failure_message == "a stream event is not valid JSON"


def test_deep_json_in_bodies_gives_a_short_message() -> None:
    error_body = b'{"error":' + nested_message(600) + b"}"
    with pytest.raises(ProtocolError, match=r"^error instead of a chat completion: \(no message\)$"):
        OPENAI.parse_chat_response(error_body)
    message = OPENAI.parse_error_message(error_body)
    assert len(message) <= 200 and message.startswith('{"error":{"message":')
    assert OPENAI.parse_body_error(error_body) == "(a JSON value nested too deeply to show)"
    choices_body = (
        b'{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":' + nested_list(600) + b"}]}"
    )
    with pytest.raises(ProtocolError, match=r"^finish_reason is not a string$"):
        OPENAI.parse_chat_response(choices_body)


# -- huge choices -----------------------------------------------------------------------------


def test_choices_are_looked_at_only_up_to_the_bound() -> None:
    # entries past the bound are not even type-checked: they are never looked at
    choices: list[Any] = [{"index": 1}] * MAX_CHOICES_SCANNED + [object()] * 200_000
    assert choice_zero(choices) is None
    assert choice_zero([{"index": 0, "delta": {}}, *([object()] * 200_000)]) == {"index": 0, "delta": {}}


def test_200000_choices_cost_bounded_time() -> None:
    others = b",".join([b'{"index":1}'] * 200_000)
    body = b'{"choices":[' + others + b',{"index":0,"message":{"content":"x"}}]}'
    started = time.perf_counter()
    with pytest.raises(ProtocolError, match="no message in choice 0"):
        OPENAI.parse_chat_response(body)
    stream = b'data: {"choices":[{"index":0,"delta":{"content":"a"}},' + b"0," * 200_000 + b"0]}\n\n"
    record = assert_same_every_way(stream + chunk({}, "stop") + DONE)
    assert record.ok and record.output_tokens == 1
    assert time.perf_counter() - started < 10.0  # generous: parsing itself is tens of ms


# -- bodies that are not streams --------------------------------------------------------------


def test_a_json_error_body_answering_a_stream_keeps_the_server_message() -> None:
    body = b'{"error": {"message": "model llama3 is not loaded", "type": "invalid_request_error"}}\n'
    record = assert_same_every_way(body)
    assert record.failure_kind is FailureKind.STREAM_ERROR
    assert record.failure_message == "error instead of a stream: model llama3 is not loaded"


@pytest.mark.parametrize("body", [b"", b"<html>502</html>", b'{"id": "chatcmpl-1", "choices": []}'])
def test_a_body_that_is_neither_a_stream_nor_an_error_is_a_protocol_error(body: bytes) -> None:
    record = assert_same_every_way(body)
    assert record.failure_kind is FailureKind.PROTOCOL_ERROR
    assert record.failure_message == "the response holds no server-sent events"


def test_only_comments_then_a_clean_close_is_truncated() -> None:
    record = assert_same_every_way(b": keep-alive\n\n" * 5)
    assert record.failure_kind is FailureKind.TRUNCATED


# -- bounds on what is kept -------------------------------------------------------------------


def test_an_overlong_line_is_response_too_large_and_keeps_what_came_before() -> None:
    stream = chunk({"content": "a"}) + b"data: " + b"x" * 5000 + b"\n\n" + chunk({}, "stop") + DONE
    for parts in pieces(stream):
        record = record_of(parts, max_line_bytes=4096)
        assert record.failure_kind is FailureKind.RESPONSE_TOO_LARGE
        assert record.failure_message == "an SSE line is longer than 4096 bytes"
        assert record.output_tokens == 1 and record.first_token_s is not None


def test_chunk_times_are_capped_while_itl_stays_exact() -> None:
    parts = [chunk({"content": "t"}) for _ in range(25)] + [chunk({}, "stop") + DONE]
    record = record_of(parts, max_chunk_times=10)
    assert record.ok and record.chunk_times_capped
    assert len(record.token_chunk_times_s) == 10
    assert record.output_tokens == 25
    assert record.last_token_s == pytest.approx(START + 0.024)
    assert itl_ms(record) == pytest.approx(1.0)
    assert not record_of(parts, max_chunk_times=25).chunk_times_capped


def test_an_interrupted_stream_keeps_what_it_measured() -> None:
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=0.0, start_s=START)
    parser = OPENAI.stream_parser()
    recorder = StreamRecorder(record, parser)
    recorder.feed(chunk({"role": "assistant"}, model="served") + chunk({"content": "par"}), START + 0.2)
    recorder.feed(chunk({"content": "tial"}), START + 0.3)
    recorder.interrupted()
    assert (record.first_token_s, record.last_token_s) == (START + 0.2, START + 0.3)
    assert record.output_tokens == 2 and record.served_model == "served"
    assert parser.text == "partial"
    assert record.outcome is Outcome.SUCCESS  # judging is the caller's: it knows why it stopped


# -- embeddings -------------------------------------------------------------------------------


def parse_one_embedding(body: bytes) -> Any:
    return OPENAI_EMBEDDINGS.parse_response(
        body, expected_count=1, encoding_format="float", expected_dimensions=None
    )


def embeddings(vectors: list[Any], encoding_format: str = "float") -> Any:
    data = [{"index": i, "embedding": vector} for i, vector in enumerate(vectors)]
    body = orjson.dumps({"data": data, "model": "served-embedder"})
    return OPENAI_EMBEDDINGS.parse_response(
        body, expected_count=len(vectors), encoding_format=encoding_format, expected_dimensions=None
    )


@pytest.mark.parametrize(
    "vector",
    [[[0.1, 0.2], [0.3, 0.4]], ["0.1", "0.2"], [True, False], [0.1, None], [{"x": 1}, 0.2]],
    ids=["per-token-matrix", "strings", "bools", "null", "objects"],
)
def test_embeddings_that_are_not_flat_lists_of_numbers_are_invalid(vector: list[Any]) -> None:
    with pytest.raises(InvalidResponseError, match=r"^embedding 1 is not a flat list of numbers"):
        embeddings([[0.5, 0.5], vector])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_embedding_values_are_invalid(value: float) -> None:
    encoded = base64.b64encode(struct.pack("<2f", 0.5, value)).decode()
    with pytest.raises(InvalidResponseError, match=r"^embedding 0 holds a number that is not finite$"):
        embeddings([encoded], encoding_format="base64")


def test_a_number_beyond_a_double_makes_the_body_invalid_json() -> None:
    body = b'{"data":[{"index":0,"embedding":[1, 1e400]}]}'
    with pytest.raises(ProtocolError, match=r"^embeddings response is not valid JSON$"):
        OPENAI_EMBEDDINGS.parse_response(
            body, expected_count=1, encoding_format="float", expected_dimensions=None
        )


def test_valid_embeddings_pass_with_the_served_model() -> None:
    response = embeddings([[1, 0.5], [0, -2.5e-3]])
    assert response.vectors == [[1, 0.5], [0, -2.5e-3]] and response.model == "served-embedder"
