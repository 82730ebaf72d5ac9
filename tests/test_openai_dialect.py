"""The OpenAI Chat Completions dialect and the embeddings format, on real-looking payloads."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from locust_aiapi._errors import ConfigurationError, InvalidResponseError, ProtocolError
from locust_aiapi._records import Usage
from locust_aiapi._sse import SSEDecoder, SSEEvent
from locust_aiapi.dialects import (
    CONTENT,
    OPENAI,
    OPENAI_EMBEDDINGS,
    TOKEN,
    ChatCompletion,
    OpenAIChatDialect,
    OpenAIChatStream,
    StreamError,
)

HEAD = '{"id":"chatcmpl-9xYz","object":"chat.completion.chunk","created":1717000000,"model":"gpt-4o-mini"'
ROLE = HEAD + ',"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
ROLE += '"logprobs":null,"finish_reason":null}],"usage":null}'
FINISH = HEAD + ',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}'
USAGE = (
    HEAD + ',"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,'
    '"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}'
)
AZURE_FILTER = (
    '{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,'
    '"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}'
)


def delta_chunk(delta: dict[str, Any], finish_reason: str | None = None, index: int = 0) -> str:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return orjson.dumps(
        {"id": "chatcmpl-9xYz", "object": "chat.completion.chunk", "choices": [choice]}
    ).decode()


def feed_all(parser: OpenAIChatStream, *datas: str) -> list[int]:
    return [parser.feed(SSEEvent(data)) for data in datas]


# -- streaming --------------------------------------------------------------------------------


def test_typical_stream() -> None:
    parser = OPENAI.stream_parser()
    chunks = [ROLE, delta_chunk({"content": "Hello"}), delta_chunk({"content": " world"}), FINISH, USAGE]
    assert feed_all(parser, *chunks, "[DONE]") == [0, TOKEN | CONTENT, TOKEN | CONTENT, 0, 0, 0]
    assert parser.text == "Hello world"
    assert parser.reasoning == ""
    assert parser.token_chunks == 2
    assert parser.finish_reason == "stop"
    # prompt_tokens_details.cached_tokens 0 is a count reported (nothing cached), not "unknown"
    assert parser.usage == Usage(12, 3, 15, cached_prompt_tokens=0)
    assert parser.finished
    assert parser.error is None and parser.protocol_error is None


def test_multi_token_chunk_counts_once() -> None:
    parser = OpenAIChatStream()
    assert parser.feed(SSEEvent(delta_chunk({"content": "Hello, world! How are"}))) == TOKEN | CONTENT
    assert parser.token_chunks == 1
    assert parser.text == "Hello, world! How are"


def test_reasoning_is_a_token_but_not_content() -> None:
    parser = OpenAIChatStream()
    flags = feed_all(
        parser,
        delta_chunk({"role": "assistant", "content": None, "reasoning_content": "Let me"}),  # DeepSeek, vLLM
        delta_chunk({"content": "", "reasoning": " think"}),  # OpenRouter
        delta_chunk({"content": "42", "reasoning_content": None}),
        delta_chunk({"content": "!", "reasoning_content": "."}),
    )
    assert flags == [TOKEN, TOKEN, TOKEN | CONTENT, TOKEN | CONTENT]
    assert parser.reasoning == "Let me think."
    assert parser.text == "42!"
    assert parser.token_chunks == 4


def test_tool_call_text_is_a_token() -> None:
    parser = OpenAIChatStream()
    first = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    flags = feed_all(
        parser,
        delta_chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
        delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        delta_chunk({"tool_calls": [{"index": 1, "function": {"name": "get_time", "arguments": "{}"}}]}),
        delta_chunk({}, finish_reason="tool_calls"),
        "[DONE]",
    )
    assert flags == [TOKEN, TOKEN, TOKEN, TOKEN, 0, 0]
    assert parser.text == '{"city":"Paris"}\n{}'
    assert parser.finish_reason == "tool_calls"


def test_legacy_function_call_is_a_token() -> None:
    parser = OpenAIChatStream()
    flags = feed_all(
        parser,
        delta_chunk({"function_call": {"name": "f", "arguments": ""}}),
        delta_chunk({"function_call": {"arguments": "{}"}}),
    )
    assert flags == [TOKEN, TOKEN]
    assert parser.text == "{}"


def test_refusal_is_visible_content() -> None:
    parser = OpenAIChatStream()
    assert parser.feed(SSEEvent(delta_chunk({"content": None, "refusal": "I can't"}))) == TOKEN | CONTENT
    assert parser.text == "I can't"


def test_chunks_without_tokens_return_zero() -> None:
    parser = OpenAIChatStream()
    flags = feed_all(
        parser,
        AZURE_FILTER,
        ROLE,
        delta_chunk({"role": "assistant"}),
        delta_chunk({"content": None}),
        delta_chunk({}),
        delta_chunk({"content": 5}),  # not a string: ignored
        delta_chunk({"content": "other choice"}, index=1),  # n > 1 is not supported
        "   ",  # a keep-alive
    )
    assert flags == [0] * 8
    assert parser.token_chunks == 0
    assert parser.text == ""
    assert not parser.finished
    assert parser.protocol_error is None


def test_finish_chunk_with_content_and_usage() -> None:
    parser = OpenAIChatStream()
    chunk = orjson.dumps(
        {
            "choices": [{"index": 0, "delta": {"content": "end"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        }
    ).decode()
    assert parser.feed(SSEEvent(chunk)) == TOKEN | CONTENT
    assert parser.finished
    assert parser.finish_reason == "length"
    assert parser.usage == Usage(1, 2, 3)


def test_last_usage_wins() -> None:
    parser = OpenAIChatStream()
    feed_all(
        parser,
        orjson.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}).decode(),
        orjson.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}}).decode(),
        orjson.dumps({"choices": [], "usage": None}).decode(),
    )
    assert parser.usage == Usage(prompt_tokens=5, completion_tokens=9, total_tokens=None)


@pytest.mark.parametrize(
    ("data", "event_type", "expected"),
    [
        (
            '{"error":{"message":"The server had an error.","type":"server_error","param":null,"code":null}}',
            "message",
            StreamError("The server had an error.", "server_error", None),
        ),
        ('{"error":"overloaded"}', "message", StreamError("overloaded", None, None)),
        (
            '{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}',
            "message",
            StreamError("too long", "BadRequestError", "400"),
        ),
        ('{"message":"boom"}', "error", StreamError("boom", None, None)),
        ("upstream timeout", "error", StreamError("upstream timeout", None, None)),
        ('{"error":{"code":"x"}}', "message", StreamError('{"code":"x"}', None, "x")),
    ],
)
def test_in_stream_error(data: str, event_type: str, expected: StreamError) -> None:
    parser = OpenAIChatStream()
    assert parser.feed(SSEEvent(data, event_type)) == 0
    assert parser.error == expected
    assert parser.protocol_error is None
    parser.feed(SSEEvent('{"error":"second"}'))
    assert parser.error == expected  # the first error is kept


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"choices":[{"index":0,"delta":{"content":"Hel', "a stream event is not valid JSON"),
        ("not json", "a stream event is not valid JSON"),
        ("[1, 2]", "a stream event is not a JSON object"),
        ('"text"', "a stream event is not a JSON object"),
        ('{"choices":"nope"}', "a stream event has an unexpected structure"),
        ('{"choices":{"0":{}}}', "a stream event has an unexpected structure"),
        ('{"choices":[{"index":0,"delta":"x"}]}', "a stream event has an unexpected structure"),
        (
            '{"choices":[{"index":0,"delta":{"tool_calls":[1]}}]}',
            "a stream event has an unexpected structure",
        ),
    ],
)
def test_protocol_errors_never_raise(data: str, message: str) -> None:
    parser = OpenAIChatStream()
    assert parser.feed(SSEEvent(data)) == 0
    assert parser.protocol_error == message
    parser.feed(SSEEvent("[oops"))
    assert parser.protocol_error == message  # the first one is kept


def test_done_with_surrounding_whitespace() -> None:
    parser = OpenAIChatStream()
    assert parser.feed(SSEEvent(" [DONE] ")) == 0
    assert parser.finished and parser.protocol_error is None


def test_bytes_to_flags_through_the_sse_decoder() -> None:
    chunks = [ROLE, delta_chunk({"content": "Hi"}), delta_chunk({"content": "!"}), FINISH, USAGE, "[DONE]"]
    stream = "".join(f"data: {chunk}\r\n\r\n" for chunk in chunks).encode()
    for size in (1, 7, 64, len(stream)):
        decoder, parser = SSEDecoder(), OpenAIChatStream()
        flags = [
            parser.feed(event)
            for start in range(0, len(stream), size)
            for event in decoder.feed(stream[start : start + size])
        ]
        flags += [parser.feed(event) for event in decoder.end()]
        assert flags == [0, TOKEN | CONTENT, TOKEN | CONTENT, 0, 0, 0]
        assert parser.text == "Hi!" and parser.finished


# -- non-streamed answers ---------------------------------------------------------------------


def completion_body(message: dict[str, Any], **extra: Any) -> bytes:
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    usage = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
    return orjson.dumps(
        {"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice], "usage": usage, **extra}
    )


def test_parse_chat_response() -> None:
    body = completion_body({"role": "assistant", "content": "Hello there", "refusal": None})
    assert OPENAI.parse_chat_response(body) == ChatCompletion("Hello there", "", Usage(10, 4, 14), "stop")


def test_parse_chat_response_with_reasoning() -> None:
    body = completion_body({"role": "assistant", "content": "42", "reasoning_content": "Think."})
    completion = OPENAI.parse_chat_response(body)
    assert (completion.text, completion.reasoning) == ("42", "Think.")


def test_parse_chat_response_tool_calls_only() -> None:
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
        {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
    ]
    body = completion_body({"role": "assistant", "content": None, "tool_calls": calls})
    assert OPENAI.parse_chat_response(body).text == '{"x":1}\n{}'


def test_parse_chat_response_without_usage() -> None:
    body = orjson.dumps({"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": None}]})
    assert OPENAI.parse_chat_response(body) == ChatCompletion("x", "", None, None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>502</html>", "chat completion is not valid JSON"),
        (b"[]", "chat completion is not a JSON object"),
        (b'{"choices":[]}', "chat completion has no choices"),
        (b'{"object":"chat.completion"}', "chat completion has no choices"),
        (b'{"error":{"message":"bad model"}}', "error instead of a chat completion: bad model"),
        (b'{"choices":[{"index":0,"finish_reason":"stop"}]}', "chat completion has no message in choice 0"),
        (
            b'{"choices":[{"index":0,"message":{"tool_calls":5}}]}',
            "chat completion has an unexpected structure",
        ),
    ],
)
def test_parse_chat_response_errors(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match="^" + message + "$"):
        OPENAI.parse_chat_response(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}',
            "Rate limit reached",
        ),
        (b'{"error":"Model not found"}', "Model not found"),
        (b'{"message":"Internal  server\\n error"}', "Internal server error"),
        (b'{"detail":"Not Found"}', "Not Found"),
        (b'{"detail":[{"loc":["body","model"],"msg":"field required","type":"missing"}]}', "field required"),
        (b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "Overloaded"),
        (b'[{"error":{"code":503,"message":"unavailable"}}]', "unavailable"),
        (b"<html>\n<body>  502 Bad Gateway </body></html>", "<html> <body> 502 Bad Gateway </body></html>"),
        (b'{"status":"down"}', '{"status":"down"}'),
        (b"", "(empty body)"),
        (b"\xff oops", "\ufffd oops"),
    ],
)
def test_parse_error_message(body: bytes, message: str) -> None:
    assert OPENAI.parse_error_message(body) == message


def test_parse_error_message_excerpt_is_short() -> None:
    message = OPENAI.parse_error_message(b"x" * 1000)
    assert len(message) == 200 and message.endswith("…")


# -- request bodies ---------------------------------------------------------------------------


def chat_request(dialect: OpenAIChatDialect = OPENAI, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": None,
        "temperature": None,
        "stream": True,
        "extra_body": {},
    }
    arguments.update(overrides)
    result: dict[str, Any] = orjson.loads(dialect.build_chat_request(**arguments))
    return result


def test_streaming_request_asks_for_usage() -> None:
    assert chat_request(max_tokens=64, temperature=0.0) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "max_tokens": 64,
        "temperature": 0.0,
        "stream_options": {"include_usage": True},
    }


def test_non_streaming_request_has_no_stream_options() -> None:
    assert chat_request(stream=False) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": False,
    }


def test_extra_body_overrides_anything() -> None:
    extra = {"stream_options": None, "temperature": 0.7, "top_p": 0.9, "model": "other"}
    body = chat_request(temperature=0.0, extra_body=extra)
    assert body["stream_options"] is None
    assert (body["temperature"], body["top_p"], body["model"]) == (0.7, 0.9, "other")


def test_dialect_options() -> None:
    dialect = OpenAIChatDialect(
        name="o-series", include_usage=False, max_tokens_field="max_completion_tokens"
    )
    body = chat_request(dialect, max_tokens=100)
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body and "stream_options" not in body
    assert (OPENAI.name, OPENAI.chat_path) == ("openai", "/v1/chat/completions")


def test_unencodable_extra_body_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot be encoded as JSON"):
        chat_request(extra_body={"seed": object()})


# -- embeddings -------------------------------------------------------------------------------


def embeddings_body(embeddings: list[Any], indexes: list[int] | None = None) -> bytes:
    indexes = list(range(len(embeddings))) if indexes is None else indexes
    data = [
        {"object": "embedding", "index": i, "embedding": e} for i, e in zip(indexes, embeddings, strict=True)
    ]
    usage = {"prompt_tokens": 8, "total_tokens": 8}
    return orjson.dumps({"object": "list", "data": data, "model": "text-embedding-3-small", "usage": usage})


def float32_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def parse(body: bytes, count: int, encoding_format: str = "float", dimensions: int | None = None) -> Any:
    response = OPENAI_EMBEDDINGS.parse_response(
        body, expected_count=count, encoding_format=encoding_format, expected_dimensions=dimensions
    )
    return response.vectors, response.usage


def test_build_embeddings_request() -> None:
    body = OPENAI_EMBEDDINGS.build_request(
        model="m", input=["a", "b"], dimensions=None, encoding_format="float", extra_body={}
    )
    assert orjson.loads(body) == {"model": "m", "input": ["a", "b"], "encoding_format": "float"}
    body = OPENAI_EMBEDDINGS.build_request(
        model="m", input="a", dimensions=256, encoding_format="base64", extra_body={"user": "u", "model": "n"}
    )
    expected = {"model": "n", "input": "a", "encoding_format": "base64", "dimensions": 256, "user": "u"}
    assert orjson.loads(body) == expected


def test_float_embeddings_are_ordered_by_index() -> None:
    body = embeddings_body([[0.3, 0.4], [0.1, 0.2], [0.5, 0.6]], indexes=[1, 0, 2])
    vectors, usage = parse(body, 3, dimensions=2)
    assert vectors == [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
    assert usage == Usage(prompt_tokens=8, completion_tokens=None, total_tokens=8)


def test_base64_embeddings_are_little_endian_float32() -> None:
    body = embeddings_body([float32_base64([0.5, -1.25, 2.0]), float32_base64([1.0, 0.0, -0.5])])
    vectors, _ = parse(body, 2, encoding_format="base64", dimensions=3)
    assert vectors == [[0.5, -1.25, 2.0], [1.0, 0.0, -0.5]]


def test_float_embeddings_are_accepted_when_base64_was_asked() -> None:
    vectors, _ = parse(embeddings_body([[0.5, 1.5]]), 1, encoding_format="base64")
    assert vectors == [[0.5, 1.5]]


@pytest.mark.parametrize(
    ("body", "count", "dimensions", "message"),
    [
        (embeddings_body([[0.1], [0.2]]), 3, None, "expected 3 embeddings, got 2"),
        (embeddings_body([[0.1, 0.2], [0.3, 0.4]]), 2, 3, "expected 3 dimensions, got 2"),
        (embeddings_body([[0.1, 0.2], [0.3]]), 2, None, r"embeddings have different dimensions: \[1, 2\]"),
        (embeddings_body([[], []]), 2, None, "embeddings are empty"),
        (embeddings_body([[0.1], [0.2]], indexes=[0, 0]), 2, None, "embedding indexes are not a permutation"),
    ],
)
def test_invalid_embeddings(body: bytes, count: int, dimensions: int | None, message: str) -> None:
    with pytest.raises(InvalidResponseError, match=message):
        parse(body, count, dimensions=dimensions)


@pytest.mark.parametrize(
    ("body", "encoding_format", "message"),
    [
        (b"not json", "float", "embeddings response is not valid JSON"),
        (b'{"data": null}', "float", "embeddings response has no data list"),
        (b'{"data": [1]}', "float", "embeddings data holds a non-object item"),
        (embeddings_body(["!!not base64!!"]), "base64", "embedding is not valid base64"),
        (
            embeddings_body([base64.b64encode(b"\x00" * 6).decode()]),
            "base64",
            "not a whole number of float32",
        ),
        (embeddings_body([float32_base64([1.0])]), "float", "embedding is not a list of floats"),
        (embeddings_body([None]), "base64", "embedding is not a list of floats or a base64 string"),
    ],
)
def test_unparseable_embeddings(body: bytes, encoding_format: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse(body, 1, encoding_format=encoding_format)
