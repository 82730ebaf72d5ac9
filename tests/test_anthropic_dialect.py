"""The Anthropic Messages dialect, sans-IO: request bodies, the typed event stream, answers, errors.

The stream below is our own, shaped like the recorded streams in anthropic-sdk-python's tests and the
Messages API's streaming docs: ``message_start`` with input usage, a ping, a thinking block ending in
a signature, a text block, a tool-use block with ``input_json_delta``s, ``message_delta`` with the
cumulative output usage, ``message_stop``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from locust_aiapi._errors import ProtocolError
from locust_aiapi._records import FailureKind, RequestKind, RequestRecord, TokenSource, Usage
from locust_aiapi._retry import RETRYABLE_KINDS
from locust_aiapi._sse import SSEDecoder, SSEEvent
from locust_aiapi._stream import StreamRecorder
from locust_aiapi.dialects import (
    ANTHROPIC,
    CONTENT,
    OPENAI,
    TOKEN,
    AnthropicStream,
    resolve_dialect,
    status_failure_kind,
)
from locust_aiapi.dialects.anthropic import failure_kind_for_status


def event(kind: str, **fields: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def delta(index: int, **fields: Any) -> bytes:
    return event("content_block_delta", index=index, delta=fields)


MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {
        "input_tokens": 25,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 70,
        "output_tokens": 1,
    },
}
START = event("message_start", message=MESSAGE) + event("ping")
THINKING = (
    event("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""})
    + delta(0, type="thinking_delta", thinking="Let me think")
    + delta(0, type="thinking_delta", thinking=" about 2+2.")
    + delta(0, type="signature_delta", signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3h")
    + event("content_block_stop", index=0)
)
TEXT = (
    event("content_block_start", index=1, content_block={"type": "text", "text": ""})
    + delta(1, type="text_delta", text="It is ")
    + delta(1, type="text_delta", text="4 — 四.")
    + event("content_block_stop", index=1)
)
TOOL = (
    event(
        "content_block_start",
        index=2,
        content_block={"type": "tool_use", "id": "toolu_01", "name": "calc", "input": {}},
    )
    + delta(2, type="input_json_delta", partial_json="")
    + delta(2, type="input_json_delta", partial_json='{"expr": "2+2"}')
    + event("content_block_stop", index=2)
)
END = event(
    "message_delta",
    delta={"stop_reason": "tool_use", "stop_sequence": None},
    usage={"input_tokens": 25, "output_tokens": 42},
) + event("message_stop")
STREAM = START + THINKING + TEXT + TOOL + END
# one mask per event of STREAM, in order
EXPECTED_MASKS = [
    0,
    0,
    0,
    TOKEN,
    TOKEN,
    0,
    0,
    0,
    TOKEN | CONTENT,
    TOKEN | CONTENT,
    0,
    0,
    TOKEN,
    TOKEN,
    0,
    0,
    0,
]


def parse(pieces: list[bytes]) -> tuple[AnthropicStream, list[int]]:
    decoder = SSEDecoder()
    parser = ANTHROPIC.stream_parser()
    masks = [parser.feed(e) for piece in pieces for e in decoder.feed(piece)]
    masks += [parser.feed(e) for e in decoder.end()]
    return parser, masks


def summary(parser: AnthropicStream) -> tuple[object, ...]:
    return (
        parser.text,
        parser.reasoning,
        parser.usage,
        parser.finish_reason,
        parser.model,
        parser.token_chunks,
        parser.finished,
        parser.error,
        parser.protocol_error,
    )


EXPECTED = (
    "It is 4 — 四.",
    "Let me think about 2+2.",
    # the prompt sums all three input counts; the cached part is the cache reads, the writes are apart
    Usage(100, 42, 142, cached_prompt_tokens=70, cache_write_prompt_tokens=5),
    "tool_use",
    "claude-sonnet-4-5-20250929",
    6,
    True,
    None,
    None,
)


def test_a_whole_stream_gives_tokens_text_thinking_and_usage() -> None:
    parser, masks = parse([STREAM])
    assert masks == EXPECTED_MASKS
    assert summary(parser) == EXPECTED


def test_byte_by_byte_and_at_every_split_the_same() -> None:
    parser, masks = parse([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert (masks, summary(parser)) == (EXPECTED_MASKS, EXPECTED)
    for split in range(0, len(STREAM), 7):
        parser, masks = parse([STREAM[:split], b"", STREAM[split:]])
        assert (masks, summary(parser)) == (EXPECTED_MASKS, EXPECTED), split


def test_crlf_line_endings_give_the_same_events() -> None:
    parser, masks = parse([STREAM.replace(b"\n", b"\r\n")])
    assert (masks, summary(parser)) == (EXPECTED_MASKS, EXPECTED)


def test_events_after_message_stop_are_ignored() -> None:
    trailing = delta(1, type="text_delta", text="late") + event(
        "error", error={"type": "api_error", "message": "x"}
    )
    parser, masks = parse([STREAM + trailing + b"data: not json\n\n"])
    assert masks == [*EXPECTED_MASKS, 0, 0, 0]
    assert summary(parser) == EXPECTED


def test_without_message_stop_the_stream_is_truncated_even_with_a_stop_reason() -> None:
    cut = STREAM[: STREAM.index(b"event: message_stop")]
    parser, _ = parse([cut])
    assert parser.finish_reason == "tool_use" and not parser.finished
    assert record_of([cut]).failure_kind is FailureKind.TRUNCATED


def test_type_comes_from_the_data_else_from_the_event_line() -> None:
    parser = AnthropicStream()
    assert parser.feed(
        SSEEvent('{"index":0,"delta":{"type":"text_delta","text":"hi"}}', "content_block_delta")
    ) == (TOKEN | CONTENT)
    assert parser.feed(SSEEvent("{}", "message_stop")) == 0
    assert parser.finished and parser.text == "hi"


def test_unknown_events_and_deltas_are_skipped() -> None:
    extra = event("content_block_future", index=9) + delta(
        1, type="citations_delta", citation={"cited_text": "x"}
    )
    parser, masks = parse([START + extra + TEXT + END])
    assert masks == [0, 0, 0, 0, 0, TOKEN | CONTENT, TOKEN | CONTENT, 0, 0, 0]
    assert parser.token_chunks == 2 and parser.finished


def test_an_empty_text_delta_is_a_token_but_not_content() -> None:
    parser = AnthropicStream()
    empty = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}}
    assert parser.feed(SSEEvent(orjson.dumps(empty).decode())) == TOKEN
    assert parser.text == ""


@pytest.mark.parametrize(
    ("error_type", "kind"),
    [("overloaded_error", FailureKind.OVERLOADED), ("api_error", FailureKind.STREAM_ERROR)],
)
def test_an_error_event_fails_the_stream_under_its_kind(error_type: str, kind: FailureKind) -> None:
    body = START + TEXT[: TEXT.index(b"event: content_block_stop")]
    body += event("error", error={"type": error_type, "message": "Overloaded"})
    record = record_of([body])
    assert record.failure_kind is kind
    assert record.failure_message == "error in stream: Overloaded"
    assert record.output_tokens == 2 and record.output_tokens_source is TokenSource.COUNTED
    assert record.prompt_tokens == 100  # from message_start


def test_an_error_event_that_is_not_json_is_still_an_error() -> None:
    parser, _ = parse([START + b"event: error\ndata: upstream gone\n\n"])
    assert parser.error is not None and parser.error.message == "upstream gone"
    assert not parser.error.overloaded


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            event("message_delta", delta={}, usage={"output_tokens": -1}),
            "usage.output_tokens is not an integer",
        ),
        (
            event("message_delta", delta={}, usage={"output_tokens": True}),
            "usage.output_tokens is not an integer",
        ),
        (event("message_delta", delta={"stop_reason": 7}), "stop_reason is not a string"),
        (event("message_start", message=MESSAGE), "the stream has a second message_start"),
        (delta(0, type="text_delta", text=None), "a content_block_delta's text is not a string"),
        (delta(0, type="thinking_delta"), "a stream event has an unexpected structure"),
        (b"data: [1, 2]\n\n", "a stream event is not a JSON object"),
        (b"data: {oops\n\n", "a stream event is not valid JSON"),
    ],
)
def test_invalid_events_are_protocol_errors(bad: bytes, message: str) -> None:
    parser, _ = parse([START + bad + TEXT + END])
    assert parser.protocol_error is not None and parser.protocol_error.startswith(message)
    assert record_of([START + bad + TEXT + END]).failure_kind is FailureKind.PROTOCOL_ERROR


def test_ttft_at_the_first_thinking_delta_and_first_content_at_the_first_text_delta() -> None:
    pieces = [START, THINKING, TEXT + TOOL, END]
    record = record_of(pieces)
    assert record.ok
    assert record.first_token_s == 2.0  # START arrived at 1.0, the thinking deltas at 2.0
    assert record.first_content_s == 3.0
    assert record.token_chunk_times_s == [2.0, 2.0, 3.0, 3.0, 3.0, 3.0]
    assert (record.output_tokens, record.output_tokens_source) == (42, TokenSource.USAGE)
    assert (record.finish_reason, record.served_model) == ("tool_use", "claude-sonnet-4-5-20250929")


def test_a_stream_with_no_token_is_empty() -> None:
    assert record_of([START + END]).failure_kind is FailureKind.EMPTY_RESPONSE


def record_of(pieces: list[bytes]) -> RequestRecord:
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=0.0, start_s=0.0)
    recorder = StreamRecorder(record, ANTHROPIC.stream_parser(), body_error=ANTHROPIC.parse_body_error)
    for number, piece in enumerate(pieces, start=1):
        recorder.feed(piece, float(number))
    recorder.end(float(len(pieces) + 1))
    return record


def test_an_error_body_instead_of_a_stream_is_a_stream_error() -> None:
    body = b'{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}'
    record = record_of([body])
    assert record.failure_kind is FailureKind.STREAM_ERROR
    assert record.failure_message == "error instead of a stream: max_tokens: Field required"


# -- requests, answers, errors ------------------------------------------------------------------


def body_of(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 100,
        "temperature": 0.5,
        "stream": True,
        "extra_body": {},
    }
    arguments.update(overrides)
    return dict(orjson.loads(ANTHROPIC.build_chat_request(**arguments)))


def test_the_request_puts_system_at_the_top_and_always_sends_max_tokens() -> None:
    assert body_of() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
        "system": "Be brief.",
        "temperature": 0.5,
        "stream": True,
    }
    plain = body_of(
        max_tokens=None, temperature=None, stream=False, messages=[{"role": "user", "content": "Hi"}]
    )
    assert plain == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    thinking = {"type": "enabled", "budget_tokens": 1024}
    assert body_of(extra_body={"thinking": thinking, "max_tokens": 2048})["thinking"] == thinking
    assert body_of(extra_body={"max_tokens": 2048})["max_tokens"] == 2048


def test_auth_headers_carry_the_key_and_the_version() -> None:
    assert ANTHROPIC.auth_headers("sk-ant-1") == {"x-api-key": "sk-ant-1", "anthropic-version": "2023-06-01"}
    assert ANTHROPIC.auth_headers("") == {}
    assert resolve_dialect("anthropic") is ANTHROPIC and ANTHROPIC.embeddings is None
    assert ANTHROPIC.chat_path == "/v1/messages"


def test_a_non_streamed_message() -> None:
    content = [
        {"type": "thinking", "thinking": "Hmm.", "signature": "abc"},
        {"type": "text", "text": "Four."},
    ]
    body = orjson.dumps(
        {
            **MESSAGE,
            "content": content,
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 9},
        }
    )
    completion = ANTHROPIC.parse_chat_response(body)
    assert (completion.text, completion.reasoning, completion.finish_reason) == ("Four.", "Hmm.", "end_turn")
    assert completion.usage == Usage(prompt_tokens=3, completion_tokens=9, total_tokens=12)
    tool = orjson.dumps(
        {**MESSAGE, "content": [{"type": "tool_use", "id": "t", "name": "calc", "input": {"x": 1}}]}
    )
    assert ANTHROPIC.parse_chat_response(tool).text == '{"x":1}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            "error instead of a message: Overloaded",
        ),
        (b'{"type":"message"}', "message has no content list"),
        (b'{"type":"message","content":[7]}', "message has an unexpected structure"),
        (b"[]", "message is not a JSON object"),
    ],
)
def test_bad_non_streamed_answers_are_protocol_errors(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        ANTHROPIC.parse_chat_response(body)


def test_error_messages_and_body_errors() -> None:
    error = b'{"type":"error","error":{"type":"rate_limit_error",'
    error += b'"message":"Number of requests has exceeded your rate limit"}}'
    assert ANTHROPIC.parse_error_message(error) == "Number of requests has exceeded your rate limit"
    assert ANTHROPIC.parse_error_message(b"<html>Bad gateway</html>") == "<html>Bad gateway</html>"
    assert ANTHROPIC.parse_body_error(error) == "Number of requests has exceeded your rate limit"
    assert ANTHROPIC.parse_body_error(b'{"type":"message"}') is None
    assert ANTHROPIC.parse_body_error(b"event: ping") is None


def test_http_529_is_overloaded_and_retried() -> None:
    assert failure_kind_for_status(529) is FailureKind.OVERLOADED
    assert status_failure_kind(ANTHROPIC, 529) is FailureKind.OVERLOADED
    assert status_failure_kind(ANTHROPIC, 503) is None and status_failure_kind(OPENAI, 529) is None
    assert failure_kind_for_status(500) is None and failure_kind_for_status(429) is None
    assert FailureKind.OVERLOADED in RETRYABLE_KINDS
