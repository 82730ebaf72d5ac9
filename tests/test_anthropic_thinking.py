"""Anthropic's signed thinking: the parsers keep each thinking block (text and signature) and each
redacted one, bounded; a conversation sends them back opening the answer's tool calls, which the API
requires when thinking is on. The mock checks it as the API does: the official SDK and our client
against it, and a reply without its thinking or with it changed refused with the API's 400."""

from __future__ import annotations

import http.client
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anthropic
import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event

from locust_aiapi import ThinkingBlock
from locust_aiapi._conversation import Conversation
from locust_aiapi._errors import ProtocolError
from locust_aiapi._records import ChatResult, RequestKind, RequestRecord
from locust_aiapi.dialects import ANTHROPIC, AnthropicStream, _thinking_blocks
from locust_aiapi.dialects._thinking_blocks import MAX_THINKING_BLOCKS
from locust_aiapi.dialects._tool_calls import without_chat_fields
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
# the mock calls a tool whenever tools are offered (and the history does not end with results); the API
# refuses a forced tool choice with thinking
ASK = {"tools": TOOLS, "thinking": THINKING, "max_tokens": 2048}
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
    _thinking(0, ["先查", "订单。"], ["EqQBCkYIBRgCKkDab=="]),
    _call(1, "toolu_01"),
    _redacted(2, "EmwKAhgBEgy3va"),
    _thinking(3, ["再查一次"], ["c2ln"]),
    _call(4, "toolu_02"),
)
KEPT = (
    ThinkingBlock("先查订单。", "EqQBCkYIBRgCKkDab=="),
    ThinkingBlock("", "", "EmwKAhgBEgy3va", after_calls=1),
    ThinkingBlock("再查一次", "c2ln", after_calls=1),
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


def test_a_block_the_stream_left_open_is_kept_as_far_as_it_came_and_an_unsigned_one_not_at_all() -> None:
    start = _stream()[: _stream().index(b"event: message_delta")]
    open_block = event("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""})
    delta = event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "想"})
    parser = fed(AnthropicStream(), [start, open_block, delta])
    assert parser.thinking_blocks == () and not parser.finished  # the API takes no block back unsigned
    signed = event("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "c2ln"})
    parser = fed(AnthropicStream(), [start, open_block, delta, signed, delta])
    assert parser.thinking_blocks == (ThinkingBlock("想想", "c2ln"),) and not parser.finished
    # past the pieces the reasoning joins into blocks (every 1,024 tokens), still open
    pieces = [
        event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": f"{i}|"})
        for i in range(2500)
    ]
    parser = fed(AnthropicStream(), [start, open_block, *pieces, signed])
    assert parser.thinking_blocks == (ThinkingBlock("".join(f"{i}|" for i in range(2500)), "c2ln"),)


def test_the_last_signature_sent_is_the_signature_as_in_the_sdk() -> None:
    parser = fed(AnthropicStream(), [_stream(_thinking(0, ["t"], ["first", "second"]))])
    assert parser.thinking_blocks == (ThinkingBlock("t", "second"),)


def test_thinking_blocks_and_their_data_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    many = _stream(*(_redacted(index, "x") for index in range(MAX_THINKING_BLOCKS + 1)))
    parser = fed(AnthropicStream(), [many])
    assert parser.protocol_error == f"the answer has more than {MAX_THINKING_BLOCKS} thinking blocks"
    assert len(parser.thinking_blocks) == MAX_THINKING_BLOCKS
    # a signature holds the whole thinking encrypted: far beyond a few hundred characters is normal
    long = "s" * 300_000
    parser = fed(AnthropicStream(), [_stream(_thinking(0, ["t"], [long]))])
    assert parser.protocol_error is None and parser.thinking_blocks[0].signature == long
    monkeypatch.setattr(_thinking_blocks, "MAX_THINKING_DATA_CHARS", 1000)
    blocks = [_thinking(0, ["t"], ["s" * 600]), _redacted(1, "d" * 400)]
    assert fed(AnthropicStream(), [_stream(*blocks)]).protocol_error is None  # 1000: at the bound
    blocks.append(_thinking(2, ["t"], ["s"]))
    error = fed(AnthropicStream(), [_stream(*blocks)]).protocol_error
    assert error == "the answer's thinking signatures and data pass 1000 characters"
    for bad in ({"type": "signature_delta", "signature": 0}, {"type": "signature_delta"}):
        stream = _stream(_block(0, {"type": "thinking", "thinking": ""}, [bad]))
        assert (
            fed(AnthropicStream(), [stream]).protocol_error == "a thinking block's signature is not a string"
        )
    for start in ({"type": "thinking", "thinking": 0}, {"type": "redacted_thinking", "data": 0}):
        assert "is not a string" in (
            fed(AnthropicStream(), [_stream(_block(0, start, []))]).protocol_error or ""
        )


def _sdk_blocks(events: list[dict[str, Any]]) -> tuple[ThinkingBlock, ...]:
    """The thinking blocks of the official SDK's own accumulation of ``events``, as we keep them."""
    snapshot: Any = None
    buffers: dict[int, bytes] = {}  # the SDK's tool-input buffers (its internal accumulator's state)
    for item in events:
        snapshot = accumulate_event(event=item, current_snapshot=snapshot, json_bufs=buffers)
    kept, calls = [], 0
    for block in snapshot.content:
        if block.type == "tool_use":
            calls += 1
        elif block.type == "thinking":
            kept.append(ThinkingBlock(block.thinking, block.signature, None, calls))
        elif block.type == "redacted_thinking":
            kept.append(ThinkingBlock("", "", block.data, calls))
    return tuple(kept)


def _random_events(rng: random.Random) -> list[dict[str, Any]]:
    """An answer of a few blocks of every kind, some of them thousands of deltas long (past the pieces
    our text joins into blocks), some without a stop before the next start."""
    usage = {"input_tokens": 1, "output_tokens": 1}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage}  # fmt: skip
    events: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    for index in range(rng.randint(1, 6)):
        kind = rng.choice(["thinking", "thinking", "redacted_thinking", "text", "tool_use"])
        deltas: list[dict[str, Any]] = []
        if kind == "thinking":
            block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            pieces = rng.choice([1, 3, 1023, 1024, 1025, 2500])
            deltas = [{"type": "thinking_delta", "thinking": f"{index}.{i}|"} for i in range(pieces)]
            deltas.append({"type": "signature_delta", "signature": f"sig-{index}-{rng.random()}"})
        elif kind == "redacted_thinking":
            block = {"type": "redacted_thinking", "data": f"data-{index}"}
        elif kind == "text":
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": "字"}] * rng.choice([1, 1500])
        else:
            block = {"type": "tool_use", "id": f"toolu_{index}", "name": "order_status", "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": "{}"}]
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        if rng.random() < 0.8:
            events.append({"type": "content_block_stop", "index": index})
    end = {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
           "usage": {"output_tokens": 5}}  # fmt: skip
    return [*events, end, {"type": "message_stop"}]


@pytest.mark.parametrize("seed", range(30))
def test_the_blocks_kept_are_those_the_official_sdk_accumulates(seed: int) -> None:
    events = _random_events(random.Random(seed))
    wire = b"".join(event(item["type"], **{k: v for k, v in item.items() if k != "type"}) for item in events)
    parser = fed(AnthropicStream(), [wire])
    assert parser.protocol_error is None and parser.finished
    assert parser.thinking_blocks == _sdk_blocks(events)


def test_the_message_parser_keeps_thinking_and_redacted_blocks() -> None:
    content = [
        {"type": "thinking", "thinking": "先查订单。", "signature": "EqQBCkYIBRgCKkDab=="},
        {"type": "tool_use", "id": "toolu_01", "name": "order_status", "input": {"order_id": "1"}},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
        {"type": "thinking", "thinking": "unsigned"},  # not one the API would take back: not kept
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


def test_interleaved_thinking_goes_back_in_its_places_between_the_calls() -> None:
    parser = fed(AnthropicStream(), [INTERLEAVED])

    def chat(prompt: Any, **params: Any) -> ChatResult:
        record = RequestRecord("chat", RequestKind.CHAT, MODEL, True, 0.0, 0.0)
        return ChatResult(
            parser.text, parser.reasoning, None, record, parser.tool_calls, parser.thinking_blocks
        )

    conversation = Conversation(chat, lambda: 0.0)
    conversation.ask(QUESTION)
    for call in parser.tool_calls:
        conversation.add_tool_result(call.id, "ok")
    content = _answer_content(conversation.messages(), index=1)
    assert [
        (block["type"], block.get("id") or block.get("signature") or block.get("data")) for block in content
    ] == [
        ("thinking", "EqQBCkYIBRgCKkDab=="),
        ("tool_use", "toolu_01"),
        ("redacted_thinking", "EmwKAhgBEgy3va"),
        ("thinking", "c2ln"),
        ("tool_use", "toolu_02"),
    ]  # as the answer had them: the API takes thinking back unmodified and in its original order
    assert content[0]["thinking"] == "先查订单。" and content[3]["thinking"] == "再查一次"
    plain = _answer_content(conversation.messages(), index=1, dialect_messages=False)
    assert all("thinking_blocks" not in message for message in plain)  # the other dialects' history


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
    assert [block["type"] for block in _answer_content(sent, index=1)] == ["thinking", "tool_use"]


def _answer_content(
    messages: tuple[dict[str, Any], ...], index: int = 1, dialect_messages: bool = True
) -> list[Any]:
    """The content of message ``index`` as the Anthropic dialect sends ``messages``; with
    ``dialect_messages`` False, every message as the Responses dialect's history translation leaves it."""
    if not dialect_messages:
        return [without_chat_fields(message) for message in messages]
    body = orjson.loads(
        ANTHROPIC.build_chat_request(
            model=MODEL, messages=list(messages), max_tokens=10, temperature=None, stream=False, extra_body={}
        )
    )
    return list(body["messages"][index]["content"])


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


def test_the_mock_refuses_what_the_api_refuses_with_thinking(mock_url: str) -> None:
    ask = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "tools": TOOLS}
    refused = [
        (
            {**ASK, "tool_choice": {"type": "any"}},
            "Thinking may not be enabled when `tool_choice` forces tool use.",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1023}, "max_tokens": 2048},
            "greater than or equal to 1024",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 2048},
            "`max_tokens` must be greater",
        ),
        ({"thinking": {"type": "enabled"}, "max_tokens": 2048}, "budget_tokens: Field required"),
        ({**ASK, "temperature": 0.7}, "`temperature` may only be set to 1 when thinking is enabled."),
        ({**ASK, "top_k": 40}, "`top_k` must be unset when thinking is enabled."),
        ({"thinking": {"type": "adaptive"}, "max_tokens": 100, "temperature": 0}, "`temperature` may only"),
    ]
    for fields, message in refused:
        status, error = _post(mock_url, {**ask, **fields})
        assert status == 400 and message in error["error"]["message"], (fields, error)
    for fields in ({**ASK, "temperature": 1}, {**ASK, "tool_choice": {"type": "auto"}}, {"temperature": 0.2}):
        assert _post(mock_url, {**ask, "max_tokens": 2048, **fields})[0] == 200, fields  # what it allows


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("max_tokens", [1, 2, 3, 1025])
def test_thinking_before_a_call_counts_within_max_tokens(
    mock_url: str, stream: bool, max_tokens: int
) -> None:
    thinking = {"type": "adaptive"} if max_tokens < 1025 else THINKING  # adaptive: no budget to stay below
    chat = conversation_chat(ANTHROPIC, mock_url + "/v1/messages", stream)
    result = Conversation(chat, lambda: 0.0).ask(
        QUESTION, tools=TOOLS, thinking=thinking, max_tokens=max_tokens
    )
    assert result.ok, result.record.failure_message
    assert result.usage is not None and result.usage.completion_tokens is not None
    assert result.usage.completion_tokens <= max_tokens and result.thinking_blocks  # signed, cut or not
    if max_tokens == 1025:  # room for both: the whole call
        assert result.record.finish_reason == "tool_use" and len(result.tool_calls) == 1
    else:  # cut: the call as far as it came (none at 1: all thinking), and the API's stop reason
        assert result.record.finish_reason == "max_tokens"
        assert len(result.tool_calls) == (0 if max_tokens == 1 else 1)
