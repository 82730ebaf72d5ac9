"""Responses function calls: the parsers keep each ``function_call`` item (its ``call_id``, name and
arguments), bounded; a conversation (kept in Chat Completions' format) sends the calls back as
``function_call`` items and the results as ``function_call_output`` items, against a loopback server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from locust_aiapi._conversation import Conversation
from locust_aiapi._records import ToolCall
from locust_aiapi.dialects import OPENAI_RESPONSES
from locust_aiapi.dialects.openai_stream import MAX_TOOL_CALLS
from locust_aiapi.dialects.responses_stream import ResponsesStream
from tests.hostile_server import Conn, HostileServer, ReceivedRequest
from tests.hostile_wire import LAST_CHUNK, chunked, send_json, start_stream
from tests.tool_conversations import ask_then_answer_calls, conversation_chat, fed

ARGS_0 = '{"order_id": "20241201-77421"}'
ARGS_1 = '{"city": "杭州"}'
CALLS = (ToolCall("call_abc", "order_status", ARGS_0), ToolCall("call_def", "weather", ARGS_1))


def event(kind: str, **fields: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def _item(index: int, call: ToolCall) -> dict[str, Any]:
    return {"id": f"fc_{index}", "type": "function_call", "status": "completed", "call_id": call.id,
            "name": call.name, "arguments": call.arguments}  # fmt: skip


def _call_events(index: int, call: ToolCall) -> bytes:
    added = {**_item(index, call), "arguments": "", "status": "in_progress"}
    pieces = [call.arguments[:7], call.arguments[7:]]
    return (
        event("response.output_item.added", output_index=index, item=added)
        + b"".join(
            event(
                "response.function_call_arguments.delta", item_id=f"fc_{index}", output_index=index, delta=p
            )
            for p in pieces
        )
        + event("response.output_item.done", output_index=index, item=_item(index, call))
    )


def response(status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "model": "gpt-4.1", "output": output,
            "usage": {"input_tokens": 20, "output_tokens": 14, "total_tokens": 34}}  # fmt: skip


def call_stream() -> bytes:
    calls = b"".join(_call_events(index, call) for index, call in enumerate(CALLS))
    done = response("completed", [_item(index, call) for index, call in enumerate(CALLS)])
    return (
        event("response.created", response=response("in_progress", []))
        + calls
        + event("response.completed", response=done)
    )


def parse(pieces: list[bytes]) -> ResponsesStream:
    return fed(OPENAI_RESPONSES.stream_parser(), pieces)


def test_the_stream_parser_keeps_function_calls_whole_byte_by_byte_and_with_trailing_data() -> None:
    stream = call_stream()
    late = _call_events(5, ToolCall("late", "x", "{}"))  # after the terminal event: ignored
    results = []
    for pieces in ([stream], [stream[i : i + 1] for i in range(len(stream))], [stream, late]):
        parser = parse(pieces)
        results.append((parser.tool_calls, parser.text, parser.finish_reason, parser.protocol_error))
    assert results[0] == results[1] == results[2] == (CALLS, f"{ARGS_0}\n{ARGS_1}", "completed", None)


def test_function_calls_are_bounded() -> None:
    flood = [
        event("response.output_item.done", output_index=i, item=_item(i, ToolCall(f"c{i}", "f", "{}")))
        for i in range(MAX_TOOL_CALLS + 1)
    ]
    parser = parse(flood)
    assert parser.protocol_error == f"the answer has more than {MAX_TOOL_CALLS} tool calls"
    assert len(parser.tool_calls) == MAX_TOOL_CALLS
    odd = parse([event("response.output_item.done", item=[1]), event("response.output_item.done")])
    assert odd.protocol_error is None and odd.tool_calls == ()
    nameless = parse([event("response.output_item.done", item={"type": "function_call", "name": "n" * 900})])
    assert nameless.tool_calls == (ToolCall("call_0", "n" * 200, ""),)


def test_the_response_parser_keeps_function_calls() -> None:
    body = orjson.dumps(response("completed", [_item(index, call) for index, call in enumerate(CALLS)]))
    completion = OPENAI_RESPONSES.parse_chat_response(body)
    assert completion.tool_calls == CALLS and completion.text == f"{ARGS_0}\n{ARGS_1}"


def _input_sent(history: list[dict[str, Any]]) -> Any:
    body = OPENAI_RESPONSES.build_chat_request(
        model="m", messages=history, max_tokens=None, temperature=None, stream=True, extra_body={}
    )
    return orjson.loads(body)["input"]


def test_the_request_sends_calls_and_results_as_the_apis_own_items() -> None:
    history = [
        {"role": "user", "content": "我的订单到哪了？"},
        {"role": "assistant", "content": "让我查一下", "tool_calls": [call.to_message() for call in CALLS]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "已发货"},
        {"role": "tool", "tool_call_id": "call_def", "content": "晴"},
    ]
    assert _input_sent(history) == [
        {"role": "user", "content": "我的订单到哪了？"},
        {"role": "assistant", "content": "让我查一下"},
        {"type": "function_call", "call_id": "call_abc", "name": "order_status", "arguments": ARGS_0},
        {"type": "function_call", "call_id": "call_def", "name": "weather", "arguments": ARGS_1},
        {"type": "function_call_output", "call_id": "call_abc", "output": "已发货"},
        {"type": "function_call_output", "call_id": "call_def", "output": "晴"},
    ]


def calls_then_text(request: ReceivedRequest, conn: Conn) -> None:
    """Turn 1 asks for two functions; any later turn answers in text, streamed or not as asked."""
    sent = request.json()
    if sent["input"][-1].get("role") == "user":
        if sent.get("stream"):
            start_stream(conn)
            conn.write(chunked(call_stream()) + LAST_CHUNK)
        else:
            output = [_item(index, call) for index, call in enumerate(CALLS)]
            send_json(conn, 200, orjson.dumps(response("completed", output)))
        return
    message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "已发货"}]}
    if not sent.get("stream"):
        send_json(conn, 200, orjson.dumps(response("completed", [message])))
        return
    text = event("response.output_text.delta", output_index=0, content_index=0, delta="已发货")
    start_stream(conn)
    conn.write(
        chunked(text + event("response.completed", response=response("completed", [message]))) + LAST_CHUNK
    )


@pytest.mark.parametrize("stream", [True, False])
def test_a_conversation_sends_function_results_back(stream: bool) -> None:
    with HostileServer(calls_then_text) as server:
        conversation = Conversation(
            conversation_chat(OPENAI_RESPONSES, server.url + "/v1/responses", stream), lambda: 0.0
        )
        first, second = ask_then_answer_calls(
            conversation, "我的订单到哪了？杭州天气如何？", ("已发货", "晴")
        )
        assert first.tool_calls == CALLS
        sent = [request.json()["input"] for request in server.requests]
    assert second.ok and second.text == "已发货" and second.tool_calls == ()
    assert sent[1][1:] == [  # only calls: no assistant message made of their arguments
        {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
        for call in CALLS
    ] + [
        {"type": "function_call_output", "call_id": "call_abc", "output": "已发货"},
        {"type": "function_call_output", "call_id": "call_def", "output": "晴"},
    ]


def test_an_answer_with_text_and_calls_keeps_its_text_and_no_reasoning_is_sent() -> None:
    text = event("response.output_text.delta", output_index=0, content_index=0, delta="让我查一下")
    parser = parse([text + _call_events(1, CALLS[0])])
    assert parser.text == "让我查一下" and parser.tool_calls == CALLS[:1]
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_content": "r"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "r",
            "tool_calls": [CALLS[0].to_message()],
        },
    ]
    assert _input_sent(history) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
        {"type": "function_call", "call_id": "call_abc", "name": "order_status", "arguments": ARGS_0},
    ]
