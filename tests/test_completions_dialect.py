"""The legacy Completions dialect: ``prompt`` bodies, ``text_completion`` chunks, and the official
``completions.create`` against the mock's ``/v1/completions``."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from locust_aiapi._errors import ProtocolError
from locust_aiapi._records import FailureKind, RequestKind, RequestRecord, TokenSource, Usage
from locust_aiapi._sse import SSEDecoder
from locust_aiapi._stream import StreamRecorder
from locust_aiapi.dialects import CONTENT, OPENAI_COMPLETIONS, TOKEN, CompletionsStream
from locust_aiapi.mock import MockProcess

if TYPE_CHECKING:
    import openai
else:  # imported after Locust, whose gevent monkey-patching must come before the SDK imports ssl
    openai = importlib.import_module("openai")


def chunk(text: str | None, finish_reason: object = None, **extra: Any) -> bytes:
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
    payload = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "Qwen2.5-7B",
        "choices": [choice],
    }
    return b"data: " + orjson.dumps({**payload, **extra}) + b"\n\n"


USAGE = b'data: {"id":"cmpl-1","object":"text_completion","choices":[],'
USAGE += b'"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}\n\n'
STREAM = (
    chunk("Hello")
    + chunk("")
    + chunk(" wor")
    + chunk("ld")
    + chunk("", "length")
    + USAGE
    + b"data: [DONE]\n\n"
)
MASKS = [TOKEN | CONTENT, TOKEN, TOKEN | CONTENT, TOKEN | CONTENT, 0, 0, 0]


def parse(pieces: list[bytes]) -> tuple[CompletionsStream, list[int]]:
    decoder = SSEDecoder()
    parser = OPENAI_COMPLETIONS.stream_parser()
    masks = [parser.feed(e) for piece in pieces for e in decoder.feed(piece)]
    masks += [parser.feed(e) for e in decoder.end()]
    return parser, masks


def state(parser: CompletionsStream) -> tuple[object, ...]:
    return (
        parser.text,
        parser.usage,
        parser.finish_reason,
        parser.model,
        parser.token_chunks,
        parser.finished,
    )


EXPECTED = ("Hello world", Usage(5, 4, 9), "length", "Qwen2.5-7B", 4, True)


def test_whole_byte_by_byte_and_with_trailing_data_the_same() -> None:
    assert (parse([STREAM])[1], state(parse([STREAM])[0])) == (MASKS, EXPECTED)
    parser, masks = parse([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert (masks, state(parser)) == (MASKS, EXPECTED)
    parser, masks = parse([STREAM + chunk("late") + b"data: {oops\n\n"])
    assert (masks, state(parser)) == ([*MASKS, 0, 0], EXPECTED)
    assert parser.protocol_error is None


def test_recorded_stream_and_its_failures() -> None:
    record = record_of([STREAM])
    assert record.ok and (record.output_tokens, record.output_tokens_source) == (4, TokenSource.USAGE)
    cut = record_of([chunk("Hello") + chunk(" there")])
    assert (cut.failure_kind, cut.output_tokens, cut.output_tokens_source) == (
        FailureKind.TRUNCATED,
        2,
        TokenSource.COUNTED,
    )
    errored = record_of(
        [chunk("Hi") + b'data: {"error":{"message":"KV cache full","type":"server_error"}}\n\n']
    )
    assert (errored.failure_kind, errored.failure_message) == (
        FailureKind.STREAM_ERROR,
        "error in stream: KV cache full",
    )
    assert record_of([chunk("Hi", finish_reason=7)]).failure_kind is FailureKind.PROTOCOL_ERROR


def record_of(pieces: list[bytes]) -> RequestRecord:
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=0.0, start_s=0.0)
    recorder = StreamRecorder(
        record, OPENAI_COMPLETIONS.stream_parser(), body_error=OPENAI_COMPLETIONS.parse_body_error
    )
    for number, piece in enumerate(pieces, start=1):
        recorder.feed(piece, float(number))
    recorder.end(float(len(pieces) + 1))
    return record


def test_the_request_body_carries_the_messages_as_a_prompt() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
    ]
    body = orjson.loads(
        OPENAI_COMPLETIONS.build_chat_request(
            model="m", messages=messages, max_tokens=8, temperature=0.0, stream=True, extra_body={}
        )
    )
    assert body == {
        "model": "m",
        "prompt": "Be brief.\n\nHi",
        "stream": True,
        "max_tokens": 8,
        "temperature": 0.0,
        "stream_options": {"include_usage": True},
    }
    override = OPENAI_COMPLETIONS.build_chat_request(
        model="m",
        messages=messages,
        max_tokens=None,
        temperature=None,
        stream=False,
        extra_body={"prompt": "raw"},
    )
    assert orjson.loads(override) == {"model": "m", "prompt": "raw", "stream": False}
    assert OPENAI_COMPLETIONS.chat_path == "/v1/completions"


def test_non_streamed_completions() -> None:
    body = orjson.dumps(
        {
            "object": "text_completion",
            "model": "m",
            "choices": [{"index": 0, "text": "Hi", "finish_reason": "stop"}],
        }
    )
    completion = OPENAI_COMPLETIONS.parse_chat_response(body)
    assert (completion.text, completion.finish_reason, completion.model) == ("Hi", "stop", "m")
    for bad, message in [
        (b'{"choices":[]}', "completion has no choices"),
        (b'{"choices":[{"index":0}]}', "completion has no text in choice 0"),
        (b'{"choices":[7]}', "completion has an unexpected structure"),
        (b'{"error":{"message":"model not found"}}', "error instead of a completion: model not found"),
    ]:
        with pytest.raises(ProtocolError, match=message):
            OPENAI_COMPLETIONS.parse_chat_response(bad)


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "6"]) as mock:
        yield mock.url


def test_the_official_sdk_completions_create(mock_url: str) -> None:
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="k", max_retries=0) as client:
        answer = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello", max_tokens=50)
        stream = client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt=["Say hello"],
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        with pytest.raises(openai.BadRequestError, match="prompt"):
            client.completions.create(model="m", prompt=None)  # type: ignore[arg-type]
    assert answer.object == "text_completion" and answer.id.startswith("cmpl-")
    assert answer.choices[0].text and answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 6
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert len(texts) == 5 and texts[-1] == "" and chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
