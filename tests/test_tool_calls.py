"""Tool calls kept (issue 12): the OpenAI parsers keep each call's id, name and arguments, bounded;
``ChatResult.tool_calls`` exposes them; a conversation appends them as an assistant message with
``tool_calls`` and sends the tool results back, against a real loopback server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from locust_aiapi._conversation import Conversation
from locust_aiapi._errors import ProtocolError
from locust_aiapi._prompts import Prompt
from locust_aiapi._records import ChatResult, RequestKind, RequestRecord, ToolCall
from locust_aiapi._sse import SSEDecoder
from locust_aiapi.dialects import OPENAI, resolve_dialect
from locust_aiapi.dialects.base import TOKEN
from locust_aiapi.dialects.openai_stream import MAX_TOOL_CALLS, OpenAIChatStream
from tests.hostile_server import Conn, HostileServer, ReceivedRequest
from tests.hostile_wire import DONE, LAST_CHUNK, chunk, chunked, event, send_json, start_stream, usage_chunk
from tests.tool_conversations import ask_then_answer_calls, conversation_chat

ARGS_0 = '{"order_id": "20241201-77421"}'
ARGS_1 = '{"city": "杭州"}'
CALLS = (
    ToolCall("call_abc", "order_status", ARGS_0),
    ToolCall("call_def", "weather", ARGS_1),
)


def _call(index: int, **fields: Any) -> dict[str, Any]:
    return {"index": index, **fields}


def tool_call_events() -> list[bytes]:
    """How OpenAI streams two parallel calls: id, type and name first, then the arguments in pieces."""
    first = _call(0, id="call_abc", type="function", function={"name": "order_status", "arguments": ""})
    second = _call(1, id="call_def", type="function", function={"name": "weather", "arguments": ""})
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": None, "tool_calls": [first]},
        {"tool_calls": [_call(0, function={"arguments": ARGS_0[:9]})]},
        {"tool_calls": [_call(0, function={"arguments": ARGS_0[9:]})]},
        {"tool_calls": [second]},
        {"tool_calls": [_call(1, function={"arguments": ARGS_1})]},
    ]
    events = [event(chunk(delta)) for delta in deltas]
    return [*events, event(chunk({}, "tool_calls")), event(usage_chunk(20, 14)), DONE]


def parse(pieces: list[bytes]) -> tuple[OpenAIChatStream, list[int]]:
    decoder, parser = SSEDecoder(), OpenAIChatStream()
    masks = [parser.feed(e) for piece in pieces for e in decoder.feed(piece)]
    return parser, masks + [parser.feed(e) for e in decoder.end()]


def test_the_stream_parser_keeps_tool_calls_whole_byte_by_byte_and_with_trailing_data() -> None:
    stream = b"".join(tool_call_events())
    trailing = event(chunk({"tool_calls": [_call(2, id="late", function={"name": "x", "arguments": "{}"})]}))
    results = []
    for pieces in ([stream], [stream[i : i + 1] for i in range(len(stream))], [stream, trailing]):
        parser, masks = parse(pieces)
        masks = masks[:8]  # the trailing event after [DONE] is ignored (its mask is 0)
        results.append((parser.tool_calls, masks, parser.finish_reason, parser.protocol_error))
    assert results[0] == results[1] == results[2]
    calls, masks, finish_reason, error = results[0]
    assert (calls, finish_reason, error) == (CALLS, "tool_calls", None)
    assert masks == [TOKEN, TOKEN, TOKEN, TOKEN, TOKEN, 0, 0, 0]  # a named call is a token, as before


def test_tool_calls_are_bounded_and_a_missing_id_gets_one() -> None:
    long_name = "n" * 5000
    parser, _ = parse(
        [event(chunk({"tool_calls": [_call(3, function={"name": long_name, "arguments": "{}"})]}))]
    )
    [call] = parser.tool_calls
    assert call == ToolCall("call_3", "n" * 200, "{}")  # id made up from the index, name cut to 200
    too_many = [
        _call(i, id=f"c{i}", function={"name": "f", "arguments": "{}"}) for i in range(MAX_TOOL_CALLS + 1)
    ]
    flood, _ = parse(
        [event(chunk({"tool_calls": too_many[:MAX_TOOL_CALLS]})), event(chunk({"tool_calls": too_many[-1:]}))]
    )
    assert flood.protocol_error == f"the answer has more than {MAX_TOOL_CALLS} tool calls"
    assert len(flood.tool_calls) == MAX_TOOL_CALLS


def completion_body() -> bytes:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [call.to_message() for call in CALLS],
        "refusal": None,
    }
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    return orjson.dumps({"id": "x", "model": "m", "choices": [choice], "usage": {"prompt_tokens": 20}})


def test_the_completion_parser_keeps_tool_calls_and_the_legacy_function_call() -> None:
    completion = OPENAI.parse_chat_response(completion_body())
    assert completion.tool_calls == CALLS and completion.text == f"{ARGS_0}\n{ARGS_1}"
    legacy = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}
    body = orjson.dumps({"choices": [{"index": 0, "message": legacy, "finish_reason": "function_call"}]})
    assert OPENAI.parse_chat_response(body).tool_calls == (ToolCall("call_0", "f", "{}"),)


def tool_then_text(request: ReceivedRequest, conn: Conn) -> None:
    """Turn 1 asks for two tools; any later turn answers in text, streamed or not as asked."""
    messages = request.json()["messages"]
    streamed = request.json()["stream"]
    if messages[-1]["role"] == "user":
        if not streamed:
            send_json(conn, 200, completion_body())
            return
        start_stream(conn)
        conn.write(chunked(b"".join(tool_call_events())) + LAST_CHUNK)
        return
    answer = [event(chunk({"role": "assistant", "content": ""})), event(chunk({"content": "已发货"}))]
    answer += [event(chunk({}, "stop")), event(usage_chunk(40, 2)), DONE]
    if not streamed:
        body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "已发货"}}]}
        send_json(conn, 200, orjson.dumps(body))
        return
    start_stream(conn)
    conn.write(chunked(b"".join(answer)) + LAST_CHUNK)


@pytest.mark.parametrize("stream", [True, False])
def test_a_conversation_appends_tool_calls_and_sends_tool_results(stream: bool) -> None:
    reported: list[RequestRecord] = []
    with HostileServer(tool_then_text) as server:
        chat = conversation_chat(OPENAI, server.url + "/v1/chat/completions", stream, reported.append)
        conversation = Conversation(chat, lambda: 0.0, "你是客服")
        first, second = ask_then_answer_calls(
            conversation, "我的订单到哪了？杭州天气如何？", ("已发货", "晴")
        )
        assert first.tool_calls == CALLS
        sent = [request.json()["messages"] for request in server.requests]
    assert second.ok and second.text == "已发货" and second.tool_calls == ()
    assert len(sent) == 2 and sent[0] == [
        {"role": "system", "content": "你是客服"},
        {"role": "user", "content": "我的订单到哪了？杭州天气如何？"},
    ]
    assert sent[1][2:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abc", "type": "function", "function": {"name": "order_status", "arguments": ARGS_0}},
            {"id": "call_def", "type": "function", "function": {"name": "weather", "arguments": ARGS_1}},
        ]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "已发货"},
        {"role": "tool", "tool_call_id": "call_def", "content": "晴"},
    ]  # fmt: skip
    assert conversation.history[-1] == {"role": "assistant", "content": "已发货"}
    assert [record.turn for record in reported] == [1, 2]


def test_an_answer_with_text_and_calls_keeps_its_text_and_the_budget_counts_the_arguments() -> None:
    sent: list[Prompt] = []

    def chat(prompt: Prompt, **params: Any) -> ChatResult:
        sent.append(prompt)
        record = RequestRecord("chat", RequestKind.CHAT, "m", True, 0.0, 0.0)
        return ChatResult("让我查一下", "", None, record, (ToolCall("c1", "f", "x" * 400),))

    conversation = Conversation(chat, lambda: 0.0, history_budget_tokens=60)
    conversation.ask("a")
    assert conversation.history[-1]["content"] == "让我查一下"
    conversation.add_tool_result("c1", "ok")
    conversation.ask("b")
    # 400 characters of arguments (~100 tokens) exceed the budget: the first exchange is dropped, whole
    assert [m["role"] for m in sent[-1].messages] == ["user"] and sent[-1].messages[0]["content"] == "b"


def _calls_body(dialect: str, count: int) -> bytes:
    """A non-streamed answer of ``count`` tool calls in ``dialect``'s format."""
    if dialect == "openai":
        calls = [
            {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            for i in range(count)
        ]
        message = {"role": "assistant", "content": None, "tool_calls": calls}
        return orjson.dumps(
            {"object": "chat.completion", "choices": [{"message": message, "finish_reason": "tool_calls"}]}
        )
    if dialect == "openai-responses":
        items = [
            {"type": "function_call", "call_id": f"c{i}", "name": "f", "arguments": "{}"}
            for i in range(count)
        ]
        return orjson.dumps({"object": "response", "status": "completed", "output": items})
    blocks = [{"type": "tool_use", "id": f"t{i}", "name": "f", "input": {}} for i in range(count)]
    return orjson.dumps(
        {"type": "message", "role": "assistant", "content": blocks, "stop_reason": "tool_use"}
    )


@pytest.mark.parametrize("dialect", ["openai", "openai-responses", "anthropic"])
def test_a_non_streamed_answer_with_too_many_calls_is_a_protocol_error_as_a_stream_is(dialect: str) -> None:
    parse = resolve_dialect(dialect).parse_chat_response
    assert len(parse(_calls_body(dialect, MAX_TOOL_CALLS)).tool_calls) == MAX_TOOL_CALLS
    with pytest.raises(ProtocolError, match=f"more than {MAX_TOOL_CALLS} tool calls"):
        parse(_calls_body(dialect, MAX_TOOL_CALLS + 1))  # not the first 128 kept without a word
