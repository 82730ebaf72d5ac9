"""The bytes fast path for a read of one lone ``data:`` event gives exactly what the event path gives.

:meth:`SSEDecoder.lone_data` + the parser's ``feed_data`` skip the event object and the decode for the
common read (one ``data: {...}\\n\\n`` chunk). Every stream here is fed twice, through the fast path
and through a parser that has only ``feed(event)``: whole, byte by byte, one event per read, in every
two-way split, and with trailing data. The records and answers must be equal, and the fast path must
really have been taken where the reads allow it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from locust_aiapi import FailureKind, RequestKind, RequestRecord
from locust_aiapi._sse import SSEDecoder, SSEEvent
from locust_aiapi._stream import StreamRecorder
from locust_aiapi.dialects import OPENAI, AnthropicStream
from locust_aiapi.dialects.completions import CompletionsStream
from locust_aiapi.dialects.openai_stream import OpenAIChatStream
from locust_aiapi.dialects.responses_stream import ResponsesStream

from . import test_anthropic_dialect as anthropic
from . import test_responses_dialect as responses


def chunk(content: str | None = "tok", finish: str | None = None, **delta: Any) -> bytes:
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + orjson.dumps({"id": "c1", "model": "m1", "choices": [choice]}) + b"\n\n"


DONE = b"data: [DONE]\n\n"
STREAM = [chunk(None, role="assistant"), chunk("Hel"), chunk("lo"), chunk("", "stop"), DONE]
INVALID_UTF8 = b'data: {"choices":[{"index":0,"delta":{"content":"a\xffb\xed\xa0\x80"}}]}\n\n'

STREAMS = {
    "typical": STREAM,
    "no space after data:": [piece.replace(b"data: ", b"data:") for piece in STREAM],
    "crlf line ends": [piece.replace(b"\n", b"\r\n") for piece in STREAM],
    "comments between events": [b": keep-alive\n\n", STREAM[0], b":\n\n", *STREAM[1:]],
    "multi-line data": [
        STREAM[0],
        b'data: {"choices":[{"index":0,\ndata: "delta":{"content":"x"}}]}\n\n',
        *STREAM[1:],
    ],
    "invalid utf-8 in a string": [STREAM[0], INVALID_UTF8, *STREAM[1:]],
    "reasoning and tool calls": [
        chunk(None, reasoning_content="think"),
        chunk("a", tool_calls=[{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}]),
        *STREAM[1:],
    ],
    "empty data and whitespace data": [STREAM[0], b"data:\n\n", b"data:  \n\n", *STREAM[1:]],
    "an id before the events": [b"id: 7\n\n", *STREAM],
    "an error event": [STREAM[0], b'event: error\ndata: {"message":"boom"}\n\n'],
    "an error object": [STREAM[0], b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'],
    "not json": [STREAM[0], b"data: {oops\n\n", *STREAM[1:]],
    "a json array": [STREAM[0], b"data: [1,2]\n\n", *STREAM[1:]],
    "events after [DONE]": [*STREAM, chunk("ignored"), b"data: trailing"],
    "done with spaces": [*STREAM[:-1], b"data:  [DONE] \n\n"],
    "truncated": STREAM[:3],
}


class EventsOnly:
    """The same parser through ``feed(event)`` only: the path every dialect has."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def feed(self, event: SSEEvent) -> int:
        result: int = self._inner.feed(event)
        return result

    def __getattr__(self, name: str) -> Any:
        if name == "feed_data":
            raise AttributeError(name)
        return getattr(self._inner, name)


def counting(parser_class: type[Any]) -> type[Any]:
    """``parser_class``, counting the reads that took the bytes fast path (``fast_reads``)."""

    class Counted(parser_class):  # type: ignore[misc,valid-type]
        fast_reads = 0

        def feed_data(self, data: bytes, event_type: str) -> int | None:
            self.fast_reads += 1
            result: int | None = super().feed_data(data, event_type)
            return result

    return Counted


Counting = counting(OpenAIChatStream)


def run(reads: list[bytes], parser: Any, max_line_bytes: int = 1 << 20) -> tuple[RequestRecord, Any]:
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=0.0, start_s=0.0)
    recorder = StreamRecorder(
        record, parser, body_error=OPENAI.parse_body_error, max_line_bytes=max_line_bytes
    )
    for offset, data in enumerate(reads):
        if not recorder.feed(data, float(offset + 1)):
            break
    recorder.end(float(len(reads) + 1))
    return record, parser


def answer(parser: Any) -> tuple[object, ...]:
    return (
        parser.text,
        parser.reasoning,
        parser.usage,
        parser.error,
        parser.protocol_error,
        parser.finished,
        parser.token_chunks,
        getattr(parser, "tool_calls", None),
    )


def readings(pieces: list[bytes]) -> Iterator[list[bytes]]:
    whole = b"".join(pieces)
    yield pieces  # one event per read: the fast path's case
    yield [whole]
    yield [whole[i : i + 1] for i in range(len(whole))]
    for cut in range(0, len(whole) + 1, 7):
        yield [whole[:cut], whole[cut:]]


@pytest.mark.parametrize("name", list(STREAMS))
def test_the_fast_path_records_what_the_event_path_records(name: str) -> None:
    for reads in readings(STREAMS[name]):
        fast_record, fast = run(reads, OpenAIChatStream())
        slow_record, slow = run(reads, EventsOnly(OpenAIChatStream()))
        assert fast_record == slow_record, (name, reads)
        assert answer(fast) == answer(slow), (name, reads)


def test_lone_data_events_take_the_fast_path_and_others_do_not() -> None:
    _, parser = run(STREAM, Counting())
    assert parser.fast_reads == len(STREAM) - 1  # the first read of a body goes through feed() (a BOM)
    assert parser.text == "Hello" and parser.finished
    _, parser = run([piece.replace(b"\n", b"\r\n") for piece in STREAM], Counting())
    assert parser.fast_reads == 0
    _, parser = run([b"event: x\n", *STREAM], Counting())  # STREAM[0] completes event x: not lone
    assert parser.fast_reads == len(STREAM) - 1


def test_invalid_utf8_falls_back_to_the_replaced_text() -> None:
    record, parser = run([STREAM[0], INVALID_UTF8, *STREAM[1:]], Counting())
    assert parser.text == "a\ufffdb\ufffd\ufffd\ufffdHello"
    assert record.ok, record.failure_message


def events_of(stream: bytes) -> list[bytes]:
    return [piece + b"\n\n" for piece in stream.split(b"\n\n") if piece]


TYPED = {
    "anthropic": (AnthropicStream, events_of(anthropic.STREAM)),
    "anthropic, invalid utf-8": (
        AnthropicStream,
        [
            *events_of(anthropic.START),
            b"event: content_block_delta\n"
            b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\xff"}}\n\n',
            *events_of(anthropic.END),
        ],
    ),
    "anthropic, error event": (
        AnthropicStream,
        [*events_of(anthropic.START), b"event: error\ndata: {oops\n\n"],
    ),
    "anthropic, type only in the event line": (
        AnthropicStream,
        [
            *events_of(anthropic.START),
            b'event: content_block_delta\ndata: {"index":0,"delta":{"type":"text_delta","text":"x"}}\n\n',
            *events_of(anthropic.END),
        ],
    ),
    "anthropic, event line without space": (
        AnthropicStream,
        [p.replace(b"event: ", b"event:") for p in events_of(anthropic.STREAM)],
    ),
    "responses": (ResponsesStream, events_of(responses.STREAM)),
    "responses, cut short": (ResponsesStream, events_of(responses.START + responses.MESSAGE)),
}


@pytest.mark.parametrize("name", list(TYPED))
def test_typed_event_streams_record_the_same_on_both_paths(name: str) -> None:
    make, pieces = TYPED[name]
    for reads in readings(pieces):
        fast_record, fast = run(reads, make())
        slow_record, slow = run(reads, EventsOnly(make()))
        assert fast_record == slow_record, (name, reads)
        assert answer(fast) == answer(slow), (name, reads)


def test_typed_events_take_the_fast_path() -> None:
    reads = events_of(anthropic.STREAM)
    _, parser = run(reads, counting(AnthropicStream)())
    assert parser.fast_reads == len(reads) - 1
    assert parser.text == "It is 4 — 四." and parser.finished


def test_completions_streams_take_the_same_path() -> None:
    text = b'data: {"choices":[{"index":0,"text":"hi","finish_reason":null}]}\n\n'
    reads = [text, text, b'data: {"choices":[{"index":0,"text":"","finish_reason":"stop"}]}\n\n', DONE]
    for pieces in readings(reads):
        assert run(pieces, CompletionsStream())[0] == run(pieces, EventsOnly(CompletionsStream()))[0]


def test_a_lone_line_over_the_bound_stops_the_stream_on_both_paths() -> None:
    huge = chunk("x" * 5000)
    for parser in (OpenAIChatStream(), EventsOnly(OpenAIChatStream())):
        record, _ = run([STREAM[0], STREAM[1], huge, *STREAM[2:]], parser, max_line_bytes=4096)
        assert record.failure_kind is FailureKind.RESPONSE_TOO_LARGE
        assert len(record.token_chunk_times_s) == 1  # what came before the line is kept
    at_bound = b"data: " + b"x" * 4090 + b"\n\n"  # a 4,096-byte line is allowed
    decoder = SSEDecoder(max_line_bytes=4096)
    decoder.feed(b"\n")
    assert decoder.lone_data(at_bound) == (b"x" * 4090, "message")
    assert decoder.lone_data(b"data: " + b"x" * 4091 + b"\n\n") is None


LONE_CANDIDATES = [
    b"data: x\n\n",
    b"data:x\n\n",
    b"data:\n\n",
    b"data:  two\n\n",
    b"data: a\nb\n\n",
    b"data: a\r\n\r\n",
    b"data: a\n\n\n",
    b"data: a\n",
    b"data: a",
    b"event: e\ndata: a\n\n",
    b": c\n\n",
    b"\n\n",
    b"data",
    b"data: a\rb\n\n",
    b"id: 1\n\n",
    b"data: \xff\n\n",
    b"datum: a\n\n",
    b"",
    b"\n",
    b"event: e\ndata: a\n\n",
    b"event:e\ndata:a\n\n",
    b"event:\ndata: a\n\n",
    b"event: \xff:x\ndata: a\n\n",
    b"event: e\nevent: f\ndata: a\n\n",
    b"event: e\nid: 1\n\n",
    b"event: e\n\n",
    b"event: e\ndata: a\n",
    b"event: " + b"e" * 60 + b"\ndata: a\n\n",
    b"event: e\ndata: " + b"a" * 40 + b"\n\n",
    b"data: " + b"a" * 40 + b"\n\n",
    b"data: " + b"a" * 60 + b"\n\n",
    b"events: e\ndata: a\n\n",
]


def decoder_states() -> Iterator[SSEDecoder]:
    for prefix in (
        b"\n",
        b"data: a\n\n",
        b"id: 9\n\n",
        b"event: e\n",
        b"retry: 5\n",
        b"data: pending",
        b"data: open\n",
        b"data: a\r",
        b"\xef\xbb",
        b"",
    ):
        decoder = SSEDecoder(max_line_bytes=64, max_event_bytes=32)
        decoder.feed(prefix)
        yield decoder


def test_lone_data_is_exactly_what_feed_would_do() -> None:
    for state in decoder_states():
        for data in LONE_CANDIDATES:
            lone = state.lone_data(data)
            if lone is None:
                continue
            fed = copy.deepcopy(state)
            assert fed.feed(data) == [state.lone_event(*lone)], data
            assert all(getattr(fed, slot) == getattr(state, slot) for slot in SSEDecoder.__slots__), data


def test_lone_data_takes_the_common_reads() -> None:
    decoder = SSEDecoder()
    decoder.feed(b": first read\n\n")
    assert decoder.lone_data(b"data: x\n\n") == (b"x", "message")
    assert decoder.lone_data(b"data:x\n\n") == (b"x", "message")
    assert decoder.lone_data(b"data:  x\n\n") == (b" x", "message")
    assert decoder.lone_data(b"data:\n\n") == (b"", "message")
    assert decoder.lone_data(b"event: delta\ndata: {}\n\n") == (b"{}", "delta")
    assert decoder.lone_data(b"event:\ndata: {}\n\n") == (b"{}", "message")
    decoder.feed(b"id: 3\n\n")
    assert decoder.lone_event(b"x", "delta") == SSEEvent("x", "delta", "3", None)
