"""Anthropic tool calls: the parsers keep each ``tool_use`` block's id, name and input, bounded;
``ChatResult.tool_calls`` exposes them; a conversation (kept in OpenAI's format) sends the calls back
as ``tool_use`` blocks and the results as ``tool_result`` blocks, against a real loopback server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from locust_aiapi._conversation import Conversation
from locust_aiapi._prompts import Prompt
from locust_aiapi._records import ChatResult, RequestKind, RequestRecord, ToolCall
from locust_aiapi.dialects import ANTHROPIC, AnthropicStream
from locust_aiapi.dialects.openai_stream import MAX_TOOL_CALLS
from tests.hostile_server import Conn, HostileServer, ReceivedRequest
from tests.hostile_wire import LAST_CHUNK, chunked, send_json, start_stream
from tests.tool_conversations import conversation_chat, fed

ARGS_0 = '{"order_id": "20241201-77421"}'
ARGS_1 = '{"city": "杭州"}'
CALLS = (
    ToolCall("toolu_01", "order_status", ARGS_0),
    ToolCall("toolu_02", "weather", ARGS_1),
    ToolCall("toolu_03", "now", "{}"),  # a tool without input: no delta, or an empty one
)


def event(kind: str, **fields: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def _block(index: int, block: dict[str, Any], deltas: list[dict[str, Any]]) -> bytes:
    pieces = [event("content_block_start", index=index, content_block=block)]
    pieces += [event("content_block_delta", index=index, delta=delta) for delta in deltas]
    return b"".join([*pieces, event("content_block_stop", index=index)])


def _tool_use(index: int, call: ToolCall, pieces: list[str]) -> bytes:
    block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
    return _block(index, block, [{"type": "input_json_delta", "partial_json": piece} for piece in pieces])


def tool_stream(text: str = "") -> bytes:
    """How Anthropic streams parallel calls: each a block, its input JSON in pieces."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [], "usage": {"input_tokens": 20, "output_tokens": 1}}  # fmt: skip
    blocks = [_block(0, {"type": "text", "text": ""}, [{"type": "text_delta", "text": text}])] if text else []
    blocks += [
        _tool_use(1, CALLS[0], [ARGS_0[:9], ARGS_0[9:]]),
        _tool_use(2, CALLS[1], ["", ARGS_1]),
        _tool_use(3, CALLS[2], []),
    ]
    end = event("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 30})
    return event("message_start", message=message) + b"".join(blocks) + end + event("message_stop")


def parse(pieces: list[bytes]) -> AnthropicStream:
    return fed(AnthropicStream(), pieces)


def test_the_stream_parser_keeps_tool_use_blocks_whole_byte_by_byte_and_with_trailing_data() -> None:
    stream = tool_stream()
    late = _tool_use(4, ToolCall("late", "x", "{}"), ["{}"])  # after message_stop: ignored
    results = []
    for pieces in ([stream], [stream[i : i + 1] for i in range(len(stream))], [stream, late]):
        parser = parse(pieces)
        results.append((parser.tool_calls, parser.text, parser.finish_reason, parser.protocol_error))
    assert results[0] == results[1] == results[2]
    assert results[0] == (
        CALLS,
        f"{ARGS_0}\n{ARGS_1}\n{{}}",
        "tool_use",
        None,
    )  # tool input only: one call a line
    with_text = parse([tool_stream("让我查一下")])
    assert with_text.tool_calls == CALLS and with_text.text == "让我查一下"


def test_tool_calls_are_bounded_and_a_missing_id_or_name_gets_one() -> None:
    nameless = parse([_block(0, {"type": "tool_use", "name": "n" * 5000}, [])])
    assert nameless.tool_calls == (ToolCall("call_0", "n" * 200, "{}"),)
    flood = [_tool_use(i, ToolCall(f"t{i}", "f", "{}"), ["{}"]) for i in range(MAX_TOOL_CALLS + 1)]
    parser = parse(flood)
    assert parser.protocol_error == f"the answer has more than {MAX_TOOL_CALLS} tool calls"
    assert len(parser.tool_calls) == MAX_TOOL_CALLS
    odd = parse([event("content_block_start", index=0, content_block=[1]), event("content_block_start")])
    assert odd.protocol_error is None and odd.tool_calls == ()  # blocks we cannot read are not calls


def message_body(text: str = "") -> bytes:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": orjson.loads(call.arguments)}
        for call in CALLS
    ]
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": content,
               "stop_reason": "tool_use", "usage": {"input_tokens": 20, "output_tokens": 30}}  # fmt: skip
    return orjson.dumps(message)


def test_the_message_parser_keeps_tool_use_blocks_as_compact_json() -> None:
    completion = ANTHROPIC.parse_chat_response(message_body())
    compact = tuple(ToolCall(c.id, c.name, orjson.dumps(orjson.loads(c.arguments)).decode()) for c in CALLS)
    assert completion.tool_calls == compact
    assert completion.text == "\n".join(call.arguments for call in compact)
    assert ANTHROPIC.parse_chat_response(message_body("ok")).text == "ok"


HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "你是客服"},
    {"role": "user", "content": "我的订单到哪了？"},
    {"role": "assistant", "content": "让我查一下", "tool_calls": [
        {"id": "toolu_01", "type": "function", "function": {"name": "order_status", "arguments": ARGS_0}},
        {"id": "toolu_02", "type": "function", "function": {"name": "weather", "arguments": "not json"}},
        {"id": "toolu_03", "type": "function", "function": {"name": "now", "arguments": ""}},
    ]},
    {"role": "tool", "tool_call_id": "toolu_01", "content": "已发货"},
    {"role": "tool", "tool_call_id": "toolu_02", "content": "晴"},
    {"role": "tool", "tool_call_id": "toolu_03", "content": "12:00"},
]  # fmt: skip


def _sent(messages: list[dict[str, Any]]) -> dict[str, Any]:
    body = ANTHROPIC.build_chat_request(
        model="m", messages=messages, max_tokens=50, temperature=None, stream=True, extra_body={}
    )
    return orjson.loads(body)  # type: ignore[no-any-return]


def test_the_request_sends_tool_calls_as_tool_use_and_results_as_one_user_message() -> None:
    body = _sent(HISTORY)
    assert body["system"] == "你是客服"
    assert body["messages"] == [
        {"role": "user", "content": "我的订单到哪了？"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "让我查一下"},
            {"type": "tool_use", "id": "toolu_01", "name": "order_status",
             "input": {"order_id": "20241201-77421"}},
            # not a JSON object: sent as received, for the API to refuse with its reason
            {"type": "tool_use", "id": "toolu_02", "name": "weather", "input": "not json"},
            {"type": "tool_use", "id": "toolu_03", "name": "now", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "已发货"},
            {"type": "tool_result", "tool_use_id": "toolu_02", "content": "晴"},
            {"type": "tool_result", "tool_use_id": "toolu_03", "content": "12:00"},
        ]},
    ]  # fmt: skip
    plain = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert _sent(plain)["messages"] == plain


def tool_then_text(request: ReceivedRequest, conn: Conn) -> None:
    """Turn 1 asks for three tools; any later turn answers in text, streamed or not as asked."""
    sent = request.json()
    if isinstance(sent["messages"][-1]["content"], str):  # a user's question, not tool results
        if sent.get("stream"):
            start_stream(conn)
            conn.write(chunked(tool_stream()) + LAST_CHUNK)
        else:
            send_json(conn, 200, message_body())
        return
    if not sent.get("stream"):
        answer = {
            "type": "message",
            "content": [{"type": "text", "text": "已发货"}],
            "stop_reason": "end_turn",
        }
        send_json(conn, 200, orjson.dumps(answer))
        return
    message = {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "content": [],
        "usage": {"input_tokens": 40},
    }
    text = _block(0, {"type": "text", "text": ""}, [{"type": "text_delta", "text": "已发货"}])
    end = event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 2})
    start_stream(conn)
    conn.write(
        chunked(event("message_start", message=message) + text + end + event("message_stop")) + LAST_CHUNK
    )


@pytest.mark.parametrize("stream", [True, False])
def test_a_conversation_sends_anthropic_tool_results_back(stream: bool) -> None:
    with HostileServer(tool_then_text) as server:
        chat = conversation_chat(ANTHROPIC, server.url + "/v1/messages", stream)
        conversation = Conversation(chat, lambda: 0.0, "你是客服")
        first = conversation.ask("我的订单到哪了？杭州天气如何？")
        assert first.ok, first.record.failure_message
        assert [(call.id, call.name) for call in first.tool_calls] == [(call.id, call.name) for call in CALLS]
        for call, result in zip(first.tool_calls, ("已发货", "晴", "12:00"), strict=True):
            conversation.add_tool_result(call.id, result)
        second = conversation.reply()
        sent = [request.json()["messages"] for request in server.requests]
    assert second.ok and second.text == "已发货" and second.tool_calls == ()
    assert len(sent) == 2 and sent[0] == [{"role": "user", "content": "我的订单到哪了？杭州天气如何？"}]
    assistant, results = sent[1][1:]
    assert assistant["role"] == "assistant" and "tool_calls" not in assistant
    assert [(block["id"], block["input"]) for block in assistant["content"]] == [
        ("toolu_01", {"order_id": "20241201-77421"}),
        ("toolu_02", {"city": "杭州"}),
        ("toolu_03", {}),
    ]  # only tool input: no text block made of the arguments
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call.id, "content": text}
        for call, text in zip(CALLS, ("已发货", "晴", "12:00"), strict=True)
    ]}  # fmt: skip


def test_a_server_tools_input_is_nobodys_call_and_a_whole_start_input_is_kept() -> None:
    server_tool = _block(
        2,
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        [{"type": "input_json_delta", "partial_json": '{"query": "杭州"}'}],
    )
    whole = _block(3, {"type": "tool_use", "id": "toolu_09", "name": "f", "input": {"a": 1}}, [])
    parser = parse([_tool_use(1, CALLS[0], [ARGS_0]), server_tool, whole, _tool_use(4, CALLS[1], [ARGS_1])])
    assert parser.protocol_error is None
    assert parser.tool_calls == (CALLS[0], ToolCall("toolu_09", "f", '{"a":1}'), CALLS[1])


def test_reasoning_kept_for_deepseek_is_not_sent_to_anthropic() -> None:
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_content": "r"},
    ]
    assert _sent(history)["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]
    with_calls = [*HISTORY[1:3], {**HISTORY[2], "reasoning_content": "r"}]
    assert all("reasoning_content" not in message for message in _sent(with_calls)["messages"])


def test_a_tight_history_budget_never_drops_the_calls_of_the_results_it_sends() -> None:
    sent: list[Prompt] = []

    def chat(prompt: Prompt, **params: Any) -> ChatResult:
        sent.append(prompt)
        record = RequestRecord("chat", RequestKind.CHAT, "m", True, 0.0, 0.0)
        return ChatResult("", "", None, record, CALLS if len(sent) == 1 else ())

    conversation = Conversation(chat, lambda: 0.0, history_budget_tokens=5)
    conversation.ask("我的订单到哪了？杭州天气如何？" * 3)  # alone already over the budget
    for call in CALLS:
        conversation.add_tool_result(call.id, "ok")
    conversation.reply()
    roles = [message["role"] for message in sent[-1].messages]
    assert roles == ["user", "assistant", "tool", "tool", "tool"]  # the whole exchange, over budget or not
    messages = _sent([dict(message) for message in sent[-1].messages])["messages"]
    assert [block["id"] for block in messages[1]["content"]] == [call.id for call in CALLS]
