"""Anthropic's signed thinking: the parsers keep each thinking block (text and signature) and each
redacted one, bounded; a conversation sends them back opening the answer's tool calls, which the API
requires when thinking is on. The mock checks it as the API does: the official SDK and our client
against it, and a reply without its thinking or with it changed refused with the API's 400."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anthropic
import orjson
import pytest

from locust_aiapi import ThinkingBlock
from locust_aiapi._conversation import Conversation
from locust_aiapi._errors import ProtocolError
from locust_aiapi.dialects import ANTHROPIC, AnthropicStream
from locust_aiapi.dialects._thinking_blocks import MAX_SIGNATURE_CHARS, MAX_THINKING_BLOCKS
from locust_aiapi.mock import MockProcess
from tests.test_anthropic_tool_calls import _block, _tool_use, event
from tests.tool_conversations import conversation_chat, fed

KEY = "sk-ant-test"
MODEL = "claude-haiku-4-5"
THINKING = {"type": "enabled", "budget_tokens": 1024}
TOOLS = [
    {"name": "order_status", "description": "Where an order is.",
     "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}},
                      "required": ["order_id"]}},
]  # fmt: skip
ASK = {"tools": TOOLS, "tool_choice": {"type": "any"}, "thinking": THINKING, "max_tokens": 2048}
QUESTION = "我的订单到哪了？"


def _thinking(index: int, pieces: list[str], signature: list[str]) -> bytes:
    deltas = [{"type": "thinking_delta", "thinking": piece} for piece in pieces]
    deltas += [{"type": "signature_delta", "signature": piece} for piece in signature]
    return _block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)


def _redacted(index: int, data: str) -> bytes:
    return _block(index, {"type": "redacted_thinking", "data": data}, [])


def _stream(*blocks: bytes) -> bytes:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL, "content": [],
               "usage": {"input_tokens": 20, "output_tokens": 1}}  # fmt: skip
    end = event("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 30})
    return event("message_start", message=message) + b"".join(blocks) + end + event("message_stop")


def _call(index: int, call_id: str) -> bytes:
    from locust_aiapi import ToolCall

    return _tool_use(index, ToolCall(call_id, "order_status", '{"order_id": "1"}'), ['{"order_id": "1"}'])


INTERLEAVED = _stream(
    _thinking(0, ["先查", "订单。"], ["EqQBCkYIBRgCKkD", "ab=="]),
    _call(1, "toolu_01"),
    _redacted(2, "EmwKAhgBEgy3va"),
    _thinking(3, ["再查一次"], ["c2ln"]),
    _call(4, "toolu_02"),
)
KEPT = (
    ThinkingBlock("先查订单。", "EqQBCkYIBRgCKkDab=="),
    ThinkingBlock("", "", "EmwKAhgBEgy3va"),
    ThinkingBlock("再查一次", "c2ln"),
)


@pytest.mark.parametrize("split", ["whole", "bytes", "trailing"])
def test_the_stream_parser_keeps_each_thinking_block_signed_and_in_order(split: str) -> None:
    data = INTERLEAVED + (b"event: ping\ndata: {}\n\n" if split == "trailing" else b"")
    pieces = [data[i : i + 1] for i in range(len(data))] if split == "bytes" else [data]
    parser = fed(AnthropicStream(), pieces)
    assert parser.protocol_error is None and parser.finished
    assert parser.thinking_blocks == KEPT
    assert parser.reasoning == "先查订单。再查一次"  # the reasoning is every block's text, kept once
    assert [call.id for call in parser.tool_calls] == ["toolu_01", "toolu_02"]
    assert [block.to_block()["type"] for block in KEPT] == ["thinking", "redacted_thinking", "thinking"]


def test_a_block_the_stream_left_open_is_kept_as_far_as_it_came() -> None:
    start = _stream()[: _stream().index(b"event: message_delta")]
    open_block = event("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""})
    delta = event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "想"})
    parser = fed(AnthropicStream(), [start, open_block, delta])
    assert parser.thinking_blocks == (ThinkingBlock("想", ""),) and not parser.finished


def test_thinking_blocks_and_signatures_are_bounded() -> None:
    many = _stream(*(_redacted(index, "x") for index in range(MAX_THINKING_BLOCKS + 1)))
    parser = fed(AnthropicStream(), [many])
    assert parser.protocol_error is not None and "thinking blocks" in parser.protocol_error
    assert len(parser.thinking_blocks) == MAX_THINKING_BLOCKS
    half = "s" * (MAX_SIGNATURE_CHARS // 2 + 1)
    parser = fed(AnthropicStream(), [_stream(_thinking(0, ["t"], [half, half]))])
    assert parser.protocol_error is not None and "signature is longer" in parser.protocol_error
    parser = fed(AnthropicStream(), [_stream(_thinking(0, ["t"], [half, half[:-2]]))])
    assert parser.protocol_error is None and len(parser.thinking_blocks[0].signature) == MAX_SIGNATURE_CHARS


def test_the_message_parser_keeps_thinking_and_redacted_blocks() -> None:
    content = [
        {"type": "thinking", "thinking": "先查订单。", "signature": "EqQBCkYIBRgCKkDab=="},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
        {"type": "thinking", "thinking": "unsigned"},  # not one the API would take back: not kept
        {"type": "tool_use", "id": "toolu_01", "name": "order_status", "input": {"order_id": "1"}},
    ]
    usage = {"input_tokens": 3, "output_tokens": 9}
    message = {"type": "message", "role": "assistant", "model": MODEL, "content": content, "usage": usage}
    body = orjson.dumps({**message, "stop_reason": "tool_use"})
    completion = ANTHROPIC.parse_chat_response(body)
    assert completion.thinking_blocks == KEPT[:2]
    assert completion.reasoning == "先查订单。unsigned"
    assert [call.id for call in completion.tool_calls] == ["toolu_01"]
    flood = [{"type": "redacted_thinking", "data": "x"}] * (MAX_THINKING_BLOCKS + 1)
    with pytest.raises(ProtocolError, match=f"more than {MAX_THINKING_BLOCKS} thinking blocks"):
        ANTHROPIC.parse_chat_response(orjson.dumps({**message, "content": flood}))


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    args = ["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12"]  # any key: our client sends none
    with MockProcess(args) as mock:
        yield mock.url


def test_the_sdk_gets_signed_thinking_before_a_call_and_its_round_trip_is_taken(mock_url: str) -> None:
    with anthropic.Anthropic(base_url=mock_url, api_key=KEY, max_retries=0, timeout=20) as sdk:
        messages: list[Any] = [{"role": "user", "content": QUESTION}]
        with sdk.messages.stream(model=MODEL, messages=messages, **ASK) as stream:  # type: ignore[arg-type]
            final = stream.get_final_message()
        assert [block.type for block in final.content] == ["thinking", "tool_use"]
        assert final.content[0].signature  # type: ignore[union-attr]
        call = final.content[1]
        messages += [
            {"role": "assistant", "content": final.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "已发货"}],
            },  # type: ignore[union-attr]
        ]
        answer = sdk.messages.create(model=MODEL, messages=messages, thinking=THINKING, max_tokens=2048)  # type: ignore[arg-type]
        assert answer.stop_reason == "end_turn"
        with pytest.raises(anthropic.BadRequestError, match="Expected `thinking` or `redacted_thinking`"):
            sdk.messages.create(
                model=MODEL,
                messages=[messages[0], {"role": "assistant", "content": final.content[1:]}, messages[2]],
                thinking=THINKING,
                max_tokens=2048,
            )  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [True, False])
def test_a_conversation_with_thinking_sends_its_signed_blocks_back_with_the_calls(
    mock_url: str, stream: bool
) -> None:
    chat = conversation_chat(ANTHROPIC, mock_url + "/v1/messages", stream)
    conversation = Conversation(chat, lambda: 0.0, "你是客服")
    first = conversation.ask(QUESTION, **ASK)
    assert first.ok, first.record.failure_message
    assert len(first.tool_calls) == 1 and len(first.thinking_blocks) == 1
    assert first.thinking_blocks[0].thinking == first.reasoning and first.thinking_blocks[0].signature
    conversation.add_tool_result(first.tool_calls[0].id, "已发货")
    second = conversation.reply(**{**ASK, "tool_choice": {"type": "auto"}})
    assert second.ok, second.record.failure_message  # the mock refuses a reply without the thinking
    assert second.text and not second.tool_calls
    sent = conversation.messages()
    assert [block["type"] for block in _answer_content(sent)] == ["thinking", "tool_use"]


def _answer_content(messages: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    body = orjson.loads(
        ANTHROPIC.build_chat_request(
            model=MODEL, messages=list(messages), max_tokens=10, temperature=None, stream=False, extra_body={}
        )
    )
    return list(body["messages"][1]["content"])


def _post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=20)
    try:
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
        connection.request("POST", "/v1/messages", orjson.dumps(payload), headers)
        response = connection.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        connection.close()


def test_the_mock_refuses_thinking_dropped_or_changed_as_the_api_does(mock_url: str) -> None:
    status, answer = _post(
        mock_url, {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], **ASK}
    )
    assert status == 200 and [block["type"] for block in answer["content"]] == ["thinking", "tool_use"]
    thinking, call = answer["content"]
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "ok"}],
    }

    def reply(content: list[dict[str, Any]], thinking_on: bool = True) -> tuple[int, dict[str, Any]]:
        history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": content}, result]
        body = {
            "model": MODEL,
            "messages": history,
            "max_tokens": 2048,
            **({"thinking": THINKING} if thinking_on else {}),
        }
        return _post(mock_url, body)

    assert reply([thinking, call])[0] == 200
    assert reply([call], thinking_on=False)[0] == 200  # without thinking, nothing to send back
    status, error = reply([call])
    assert status == 400 and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`."
    )
    changed = {**thinking, "thinking": thinking["thinking"] + " "}
    status, error = reply([changed, call])
    assert (
        status == 400
        and error["error"]["message"] == "messages.1.content.0: Invalid `signature` in `thinking` block"
    )
    assert reply([{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"}, call])[0] == 200
