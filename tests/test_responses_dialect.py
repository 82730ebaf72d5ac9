"""The OpenAI Responses dialect, sans-IO: request bodies, the ``response.*`` stream, answers, errors.

The stream below is our own, shaped like the recorded Responses streams in openai-python's tests and
the API reference: lifecycle events, a reasoning item with a summary, a message item, a function
call, then ``response.completed`` with the usage.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from locust_aiapi._errors import ProtocolError
from locust_aiapi._records import FailureKind, RequestKind, RequestRecord, TokenSource, Usage
from locust_aiapi._sse import SSEDecoder
from locust_aiapi._stream import StreamRecorder
from locust_aiapi.dialects import CONTENT, OPENAI_EMBEDDINGS, OPENAI_RESPONSES, TOKEN, ResponsesStream

SEQUENCE = iter(range(10_000))


def event(kind: str, **fields: Any) -> bytes:
    payload = {"type": kind, **fields, "sequence_number": next(SEQUENCE)}
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


RESPONSE = {"id": "resp_67c9", "object": "response", "status": "in_progress", "model": "gpt-4.1-2025-04-14"}
RESPONSE |= {"output": [], "usage": None}
USAGE = {
    "input_tokens": 36,
    "input_tokens_details": {"cached_tokens": 20},
    "output_tokens": 87,
    "output_tokens_details": {"reasoning_tokens": 40},
    "total_tokens": 123,
}
START = event("response.created", response=RESPONSE) + event("response.in_progress", response=RESPONSE)
REASONING = (
    event(
        "response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": []}
    )
    + event("response.reasoning_summary_part.added", item_id="rs_1", output_index=0, summary_index=0, part={})
    + event(
        "response.reasoning_summary_text.delta",
        item_id="rs_1",
        output_index=0,
        summary_index=0,
        delta="Think",
    )
    + event(
        "response.reasoning_summary_text.done", item_id="rs_1", output_index=0, summary_index=0, text="Think"
    )
    + event("response.output_item.done", output_index=0, item={"id": "rs_1", "type": "reasoning"})
)
MESSAGE = (
    event(
        "response.output_item.added", output_index=1, item={"id": "msg_1", "type": "message", "content": []}
    )
    + event("response.content_part.added", item_id="msg_1", output_index=1, content_index=0, part={})
    + event("response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta="Hi ")
    + event(
        "response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta="there — 你好"
    )
    + event("response.output_text.done", item_id="msg_1", output_index=1, content_index=0, text="Hi there")
    + event("response.content_part.done", item_id="msg_1", output_index=1, content_index=0, part={})
    + event("response.output_item.done", output_index=1, item={"id": "msg_1", "type": "message"})
)
CALL = (
    event("response.output_item.added", output_index=2, item={"id": "fc_1", "type": "function_call"})
    + event("response.function_call_arguments.delta", item_id="fc_1", output_index=2, delta='{"city":')
    + event("response.function_call_arguments.delta", item_id="fc_1", output_index=2, delta='"Paris"}')
    + event("response.function_call_arguments.done", item_id="fc_1", output_index=2, arguments="{}")
    + event("response.output_item.done", output_index=2, item={"id": "fc_1", "type": "function_call"})
)
COMPLETED = event("response.completed", response={**RESPONSE, "status": "completed", "usage": USAGE})
STREAM = START + REASONING + MESSAGE + CALL + COMPLETED
EXPECTED_MASKS = [0, 0, 0, 0, TOKEN, 0, 0, 0, 0, TOKEN | CONTENT, TOKEN | CONTENT, 0, 0, 0]
EXPECTED_MASKS += [0, TOKEN, TOKEN, 0, 0, 0]
EXPECTED = (
    "Hi there — 你好",
    "Think",
    Usage(prompt_tokens=36, completion_tokens=87, total_tokens=123, cached_prompt_tokens=20),
    "completed",
    "gpt-4.1-2025-04-14",
    5,
    True,
    None,
    None,
)


def parse(pieces: list[bytes]) -> tuple[ResponsesStream, list[int]]:
    decoder = SSEDecoder()
    parser = OPENAI_RESPONSES.stream_parser()
    masks = [parser.feed(e) for piece in pieces for e in decoder.feed(piece)]
    masks += [parser.feed(e) for e in decoder.end()]
    return parser, masks


def summary(parser: ResponsesStream) -> tuple[object, ...]:
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


def record_of(pieces: list[bytes]) -> RequestRecord:
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=0.0, start_s=0.0)
    dialect = OPENAI_RESPONSES
    recorder = StreamRecorder(record, dialect.stream_parser(), body_error=dialect.parse_body_error)
    for number, piece in enumerate(pieces, start=1):
        recorder.feed(piece, float(number))
    recorder.end(float(len(pieces) + 1))
    return record


def test_a_whole_stream() -> None:
    parser, masks = parse([STREAM])
    assert (masks, summary(parser)) == (EXPECTED_MASKS, EXPECTED)


def test_byte_by_byte_at_every_split_and_with_crlf_the_same() -> None:
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))])[1] == EXPECTED_MASKS
    for split in range(0, len(STREAM), 11):
        parser, masks = parse([STREAM[:split], b"", STREAM[split:]])
        assert (masks, summary(parser)) == (EXPECTED_MASKS, EXPECTED), split
    parser, masks = parse([STREAM.replace(b"\n", b"\r\n")])
    assert (masks, summary(parser)) == (EXPECTED_MASKS, EXPECTED)


def test_events_after_the_terminal_event_are_ignored() -> None:
    late = event("response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta="x")
    parser, masks = parse(
        [STREAM + late + event("error", code="server_error", message="late") + b"data: {\n\n"]
    )
    assert masks == [*EXPECTED_MASKS, 0, 0, 0]
    assert summary(parser) == EXPECTED


def test_created_is_not_a_token_and_ttft_is_at_the_first_delta() -> None:
    record = record_of([START, REASONING, MESSAGE + CALL, COMPLETED])
    assert record.ok
    assert (record.first_token_s, record.first_content_s) == (2.0, 3.0)
    assert record.token_chunk_times_s == [2.0, 3.0, 3.0, 3.0, 3.0]
    assert (record.output_tokens, record.output_tokens_source, record.prompt_tokens) == (
        87,
        TokenSource.USAGE,
        36,
    )
    assert record.finish_reason == "completed"


def test_without_a_terminal_event_the_stream_is_truncated() -> None:
    record = record_of([START + MESSAGE])
    assert record.failure_kind is FailureKind.TRUNCATED
    assert (record.output_tokens, record.output_tokens_source) == (2, TokenSource.COUNTED)


def test_incomplete_is_an_answer_cut_at_its_limit() -> None:
    incomplete = {**RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    record = record_of(
        [START + MESSAGE + event("response.incomplete", response={**incomplete, "usage": USAGE})]
    )
    assert record.ok and record.finish_reason == "max_output_tokens" and record.output_tokens == 87


@pytest.mark.parametrize(
    "ending",
    [
        event(
            "response.failed",
            response={**RESPONSE, "status": "failed", "error": {"code": "server_error", "message": "Boom"}},
        ),
        event("error", code="server_error", message="Boom", param=None),
        b"event: error\ndata: Boom\n\n",
    ],
)
def test_failed_and_error_events_are_stream_errors(ending: bytes) -> None:
    record = record_of([START + MESSAGE + ending])
    assert record.failure_kind is FailureKind.STREAM_ERROR
    assert record.failure_message == "error in stream: Boom"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (event("response.output_text.delta", delta=None), "a delta event's delta is not a string"),
        (event("response.output_text.delta"), "a stream event has an unexpected structure"),
        (
            event("response.completed", response={**RESPONSE, "usage": {"output_tokens": -3}}),
            "usage.output_tokens",
        ),
        (b"data: [1]\n\n", "a stream event is not a JSON object"),
        (b"data: {nope\n\n", "a stream event is not valid JSON"),
    ],
)
def test_invalid_events_are_protocol_errors(bad: bytes, message: str) -> None:
    record = record_of([START + MESSAGE + bad + COMPLETED])
    assert record.failure_kind is FailureKind.PROTOCOL_ERROR
    assert (record.failure_message or "").startswith(message)


def test_unknown_events_are_skipped() -> None:
    future = event("response.output_audio.delta", delta="AAAA") + event("response.web_search_call.searching")
    parser, _ = parse([START + future + MESSAGE + COMPLETED])
    assert parser.token_chunks == 2 and parser.finished and parser.protocol_error is None


def test_the_request_body() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    body = orjson.loads(
        OPENAI_RESPONSES.build_chat_request(
            model="gpt-4.1",
            messages=messages,
            max_tokens=50,
            temperature=0.2,
            stream=True,
            extra_body={"store": False},
        )
    )
    expected = {
        "model": "gpt-4.1",
        "input": messages,
        "stream": True,
        "max_output_tokens": 50,
        "temperature": 0.2,
    }
    assert body == {**expected, "store": False}
    assert OPENAI_RESPONSES.auth_headers("sk-1") == {"Authorization": "Bearer sk-1"}
    assert OPENAI_RESPONSES.chat_path == "/v1/responses" and OPENAI_RESPONSES.embeddings is OPENAI_EMBEDDINGS


def test_a_non_streamed_response() -> None:
    output = [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Think"}]},
        {
            "type": "message",
            "id": "msg_1",
            "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
        },
    ]
    body = orjson.dumps({**RESPONSE, "status": "completed", "output": output, "usage": USAGE})
    completion = OPENAI_RESPONSES.parse_chat_response(body)
    assert (completion.text, completion.reasoning, completion.finish_reason) == ("Hi", "Think", "completed")
    assert completion.usage == Usage(36, 87, 123, cached_prompt_tokens=20)
    call = orjson.dumps({**RESPONSE, "output": [{"type": "function_call", "arguments": '{"a":1}'}]})
    assert OPENAI_RESPONSES.parse_chat_response(call).text == '{"a":1}'
    incomplete = {**RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert OPENAI_RESPONSES.parse_chat_response(orjson.dumps(incomplete)).finish_reason == "max_output_tokens"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error":{"message":"Invalid model","type":"invalid_request_error"}}',
            "error instead of a response: Invalid",
        ),
        (b'{"object":"response","output":null}', "response has no output list"),
        (b'{"object":"response","output":[3]}', "response has an unexpected structure"),
    ],
)
def test_bad_non_streamed_responses(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        OPENAI_RESPONSES.parse_chat_response(body)


def test_error_bodies() -> None:
    error = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    assert OPENAI_RESPONSES.parse_error_message(error) == "Rate limit reached"
    assert OPENAI_RESPONSES.parse_body_error(error) == "Rate limit reached"
    assert OPENAI_RESPONSES.parse_body_error(b'{"object":"response"}') is None
    assert record_of([error]).failure_message == "error instead of a stream: Rate limit reached"
