"""The SSE decoder, tested the h11 way: however the bytes are cut, the events are the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sseclient

from locust_aiapi._sse import SSEDecoder, SSEEvent

TRAILING = b"data: trailing"

OPENAI_STREAM = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"Hello"},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}\n\n'
    b"data: [DONE]\n\n"
)


def _chunkings(stream: bytes) -> Iterator[list[bytes]]:
    yield [stream]
    yield [stream[i : i + 1] for i in range(len(stream))]
    yield [piece for i in range(len(stream)) for piece in (b"", stream[i : i + 1])]
    for cut in range(len(stream) + 1):
        yield [stream[:cut], stream[cut:]]


def _feed_all(decoder: SSEDecoder, chunks: list[bytes]) -> list[SSEEvent]:
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return _feed_all(decoder, chunks) + decoder.end()


def assert_decodes(stream: bytes, expected: list[SSEEvent], *, complete: bool = True) -> None:
    """Whole, byte by byte, in every 2-way split, and (if complete) followed by more data."""
    for chunks in _chunkings(stream):
        assert decode(chunks) == expected, chunks
    if not complete:
        return
    for chunks in _chunkings(stream):
        decoder = SSEDecoder()
        assert _feed_all(decoder, [*chunks, TRAILING]) == expected, chunks
        assert [event.data for event in decoder.end()] == ["trailing"]


def test_typical_openai_stream() -> None:
    expected = [SSEEvent(block[len(b"data: ") :].decode()) for block in OPENAI_STREAM.split(b"\n\n")[:-1]]
    assert len(expected) == 5
    assert expected[-1] == SSEEvent("[DONE]")
    assert_decodes(OPENAI_STREAM, expected)


def test_one_feed_returns_every_event_it_completes() -> None:
    decoder = SSEDecoder()
    assert len(decoder.feed(OPENAI_STREAM)) == 5
    assert decoder.end() == []


def test_crlf_line_endings() -> None:
    assert_decodes(b"data: a\r\n\r\ndata: b\r\n\r\n", [SSEEvent("a"), SSEEvent("b")])


def test_crlf_split_across_chunks_is_one_line_break() -> None:
    # a spurious empty line between CR and LF would dispatch "a" and "b" separately
    stream = b"data: a\r\ndata: b\r\n\r\n"
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == [SSEEvent("a\nb")]
    assert decoder.feed(b"\n") == []
    assert decoder.end() == []
    assert_decodes(stream, [SSEEvent("a\nb")])


def test_lone_cr_line_endings() -> None:
    assert_decodes(b"data: a\r\rdata: b\rdata: c\r\r", [SSEEvent("a"), SSEEvent("b\nc")])


def test_mixed_line_endings() -> None:
    assert_decodes(b"data: a\rdata: b\ndata: c\r\n\ndata: d\n\r", [SSEEvent("a\nb\nc"), SSEEvent("d")])


def test_comments_are_ignored() -> None:
    stream = b": keep-alive\n\n:\n\ndata: x\n: OPENROUTER PROCESSING\ndata: y\n\n"
    assert_decodes(stream, [SSEEvent("x\ny")])


def test_multi_line_data_and_the_single_optional_space() -> None:
    stream = b"data: line1\ndata:line2\ndata:\ndata:  two spaces\n\n"
    assert_decodes(stream, [SSEEvent("line1\nline2\n\n two spaces")])


def test_event_id_and_retry_fields() -> None:
    stream = b"event: update\nid: 42\nretry: 1500\ndata: x\n\ndata: y\n\n"
    expected = [SSEEvent("x", "update", "42", 1500), SSEEvent("y", "message", "42", None)]
    assert_decodes(stream, expected)


def test_invalid_retry_and_id_with_nul_are_ignored() -> None:
    stream = "id: 7\nretry: 12a\nretry: -5\nretry: ²\nretry\ndata: x\n\nid: a\x00b\ndata: y\n\n".encode()
    assert_decodes(stream, [SSEEvent("x", id="7"), SSEEvent("y", id="7")])


def test_id_persists_and_can_be_reset_to_empty() -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"
    assert_decodes(stream, [SSEEvent("a", id="1"), SSEEvent("b", id="1"), SSEEvent("c", id="")])


def test_fields_without_colon_and_unknown_fields() -> None:
    stream = b"data\n\nevent\ndata: z\n\nfoo: bar\nDATA: no\ndata: w\n\n"
    assert_decodes(stream, [SSEEvent(""), SSEEvent("z"), SSEEvent("w")])


def test_empty_data_line_is_dispatched_but_no_data_is_not() -> None:
    stream = b"data:\n\nevent: ping\n\nid: 3\n\ndata: y\n\n"
    # the block without data resets the event type but still sets the last event ID
    assert_decodes(stream, [SSEEvent(""), SSEEvent("y", id="3")])


def test_bom_at_stream_start_is_stripped() -> None:
    assert_decodes(b"\xef\xbb\xbfdata: x\n\n", [SSEEvent("x")])


def test_bom_elsewhere_is_part_of_the_field_name() -> None:
    assert_decodes(b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [SSEEvent("a")])


def test_stream_shorter_than_a_bom() -> None:
    assert decode([b"\xef", b"\xbb"]) == []
    assert decode([b"\n"]) == []
    assert decode([b"\xef\xbb\n\ndata: x\n\n"]) == [SSEEvent("x")]


def test_multi_byte_utf8_split_anywhere() -> None:
    text = "héllo 你好 🎉 ünïcödé"
    assert_decodes(f"data: {text}\n\n".encode(), [SSEEvent(text)])


def test_invalid_utf8_is_replaced() -> None:
    assert_decodes(b"data: \xff\xfeok\n\n", [SSEEvent("\ufffd\ufffdok")])


def test_final_event_without_blank_line_is_dispatched_at_end() -> None:
    assert_decodes(b"data: a\n\ndata: b", [SSEEvent("a"), SSEEvent("b")], complete=False)
    assert_decodes(b"data: a\n\ndata: b\n", [SSEEvent("a"), SSEEvent("b")], complete=False)
    assert_decodes(b"data: a\n\ndata: b\r", [SSEEvent("a"), SSEEvent("b")], complete=False)
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [SSEEvent("a")]
    assert decoder.end() == [SSEEvent("b")]


def test_unicode_line_separators_are_not_line_breaks() -> None:
    text = "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg"
    assert_decodes(f"data: {text}\n\n".encode(), [SSEEvent(text)])


def test_empty_input() -> None:
    assert decode([]) == []
    assert decode([b""]) == []


# -- agreement with sseclient-py on well-formed streams ---------------------------------------

WELL_FORMED = [
    OPENAI_STREAM,
    b"data: a\r\n\r\ndata: b\r\n\r\n",
    b"data: a\r\rdata: b\rdata: c\r\r",
    b": comment\n\ndata: x\n: inside\ndata: y\n\n",
    b"data: line1\ndata:line2\ndata:\ndata:  two spaces\n\n",
    b"event: update\nid: 42\ndata: x\n\nevent: other\ndata: y\n\ndata: z\n\n",
    b"data:\n\ndata: after empty\n\n",
    "data: héllo 你好 🎉\n\ndata: a\u2028b\n\n".encode(),
    b"data: a\n\ndata: last without blank line",
]


@pytest.mark.parametrize("stream", WELL_FORMED)
def test_agrees_with_sseclient(stream: bytes) -> None:
    reference = [(event.data, event.event) for event in sseclient.SSEClient(iter([stream])).events()]
    assert reference, "the input must produce events"
    assert [(event.data, event.event) for event in decode([stream])] == reference


# -- bounds: a server controls every byte -------------------------------------------------------


def test_a_line_at_the_bound_passes_one_byte_more_stops_the_decoder() -> None:
    at_bound = b"data: " + b"x" * 58 + b"\n\n"  # a 64-byte line
    for chunks in _chunkings(at_bound):
        decoder = SSEDecoder(max_line_bytes=64)
        assert [len(e.data) for e in _feed_all(decoder, chunks) + decoder.end()] == [58]
        assert decoder.error is None
    over = b"data: first\n\n" + b"data: " + b"x" * 59 + b"\n\ndata: after\n\n"
    for chunks in _chunkings(over):
        decoder = SSEDecoder(max_line_bytes=64)
        events = _feed_all(decoder, chunks) + decoder.end()
        assert [e.data for e in events] == ["first"]  # what came before is delivered
        assert decoder.error == "an SSE line is longer than 64 bytes"
        assert decoder.feed(b"data: more\n\n") == [] and decoder.end() == []


def test_an_unterminated_line_is_dropped_as_it_arrives_not_kept_whole() -> None:
    import tracemalloc

    piece = b"x" * 65536
    decoder = SSEDecoder()  # the default bound: 1 MiB
    tracemalloc.start()
    try:
        for _ in range(800):  # a 50 MB line
            decoder.feed(piece)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoder.error == "an SSE line is longer than 1048576 bytes"
    assert peak_bytes < 3 * 1048576


def test_event_data_is_bounded_across_its_lines() -> None:
    stream = b"data: ok\n\n" + b"data: 0123456789\n" * 20
    for chunks in _chunkings(stream):
        decoder = SSEDecoder(max_event_bytes=100)
        events = _feed_all(decoder, chunks) + decoder.end()
        assert [e.data for e in events] == ["ok"]
        assert decoder.error == "an SSE event holds more than 100 bytes of data"
    many_small_events = b"data: 0123456789\n\n" * 20  # each event is small: no error
    decoder = SSEDecoder(max_event_bytes=100)
    assert len(decoder.feed(many_small_events)) == 20 and decoder.error is None


def test_comment_lines_are_counted() -> None:
    for chunks in _chunkings(b": ping\n\n:\n: pong\r\n"):
        decoder = SSEDecoder()
        assert _feed_all(decoder, chunks) + decoder.end() == []
        assert decoder.comments == 3
