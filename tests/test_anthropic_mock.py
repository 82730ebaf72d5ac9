"""The mock's `/v1/messages` against the official `anthropic` SDK and against the raw wire."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anthropic
import orjson
import pytest

from locust_aiapi._sse import SSEDecoder
from locust_aiapi.mock import MockProcess

KEY = "sk-ant-test"
MODEL = "claude-haiku-4-5"  # a current model: the SDK warns about deprecated ones
HELLO = [{"role": "user", "content": "Say hello to the load test, please."}]
THINKING = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    args = ["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12", "--api-key", KEY]
    with MockProcess(args) as mock:
        yield mock.url


@pytest.fixture
def client(mock_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=mock_url, api_key=KEY, max_retries=0, timeout=20) as sdk:
        yield sdk


def test_sdk_messages_create(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, system="Be brief.")
    assert message.id.startswith("msg_") and message.model == MODEL
    assert (message.role, message.stop_reason) == ("assistant", "end_turn")
    assert [block.type for block in message.content] == ["text"]
    assert message.usage.output_tokens == 12
    assert message.usage.input_tokens == (len("Be brief.") + len(HELLO[0]["content"])) // 4


def test_sdk_messages_stream_with_thinking(client: anthropic.Anthropic) -> None:
    # the API wants max_tokens above the thinking budget (the mock checks it)
    with client.messages.stream(model=MODEL, max_tokens=2048, messages=HELLO, thinking=THINKING) as stream:
        kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in stream]
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    thinking, text = final.content
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    assert text.type == "text" and text.text
    assert final.usage.output_tokens == 12 and final.stop_reason == "end_turn"
    deltas = [delta for kind, delta in kinds if kind == "content_block_delta"]
    assert deltas == ["thinking_delta"] * 3 + ["signature_delta"] + ["text_delta"] * 9


def test_sdk_max_tokens_stops_with_max_tokens(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=5, messages=HELLO) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.usage.output_tokens) == ("max_tokens", 5)


def test_sdk_sees_529_as_overloaded_and_the_stream_error_as_an_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        client.messages.create(
            model=MODEL, max_tokens=10, messages=HELLO, extra_headers={"x-mock-fault": "529"}
        )
    assert overloaded.value.status_code == 529
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(
            model=MODEL, max_tokens=10, messages=HELLO, extra_headers={"x-mock-fault": "429"}
        )
    assert limited.value.response.headers["retry-after"] == "1"
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client.messages.stream(
            model=MODEL, max_tokens=10, messages=HELLO, extra_headers={"x-mock-fault": "stream_error"}
        ) as stream,
    ):
        stream.get_final_message()


def test_sdk_errors_have_anthropics_shape(mock_url: str, client: anthropic.Anthropic) -> None:
    with (
        anthropic.Anthropic(base_url=mock_url, api_key="wrong", max_retries=0) as stranger,
        pytest.raises(anthropic.AuthenticationError) as denied,
    ):
        stranger.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert denied.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Incorrect API key provided."},
    }
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client.messages.create(model=MODEL, max_tokens=0, messages=HELLO)


def raw_stream(mock_url: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, list[str]]:
    url = urlsplit(mock_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=20)
    try:
        connection.request(
            "POST", "/v1/messages", orjson.dumps(body), {"content-type": "application/json", **headers}
        )
        response = connection.getresponse()
        decoder = SSEDecoder()
        events = decoder.feed(response.read()) + decoder.end()
    finally:
        connection.close()
    for item in events:  # every event's name is its data's type, as the SDK expects
        assert orjson.loads(item.data)["type"] == item.event
    return response.status, [item.event for item in events]


def test_the_raw_stream_has_the_real_apis_event_order_and_takes_x_api_key(mock_url: str) -> None:
    body = {"model": MODEL, "max_tokens": 3, "messages": HELLO, "stream": True}
    status, names = raw_stream(mock_url, {"x-api-key": KEY, "anthropic-version": "2023-06-01"}, body)
    assert status == 200
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    status, names = raw_stream(
        mock_url, {"x-api-key": KEY, "x-mock-fault": "truncate"}, {**body, "max_tokens": 8}
    )
    assert status == 200 and names[-1] == "content_block_delta" and "message_stop" not in names
