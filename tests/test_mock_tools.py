"""The mock answers an offer of tools with a tool call: the wire of each API, checked by the official SDKs
(``openai`` for Chat Completions and Responses, ``anthropic`` for Messages) and by our own client through
a whole conversation (ask, call, results, answer); the choice of tool and the arguments, sans-IO."""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from locust_aiapi._conversation import Conversation
from locust_aiapi.dialects import ANTHROPIC, OPENAI, OPENAI_RESPONSES, ChatDialect
from locust_aiapi.mock import MockConfig, MockProcess
from locust_aiapi.mock._tools import MAX_DEPTH, MAX_PROPERTIES, tool_arguments

from .tool_conversations import conversation_chat

if TYPE_CHECKING:
    import anthropic
    import openai
else:  # imported after Locust, whose gevent monkey-patching must come before the SDKs import ssl
    anthropic = importlib.import_module("anthropic")
    openai = importlib.import_module("openai")

SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "count": {"type": "integer"},
        "express": {"type": "boolean"},
        "region": {"enum": ["杭州", "上海"]},
        "note": {"type": "string"},  # not required: left out
    },
    "required": ["order_id", "count", "express", "region"],
}
CHAT_TOOLS = [{"type": "function", "function": {"name": "order_status", "parameters": SCHEMA}}]
RESPONSES_TOOLS = [{"type": "function", "name": "order_status", "parameters": SCHEMA}]
MESSAGES_TOOLS = [{"name": "order_status", "input_schema": SCHEMA}]
QUESTION = [{"role": "user", "content": "我的订单到哪了？"}]
MODEL, CLAUDE = "gpt-4.1", "claude-haiku-4-5"


def check_arguments(text: str) -> None:
    arguments = orjson.loads(text)
    assert sorted(arguments) == ["count", "express", "order_id", "region"]
    assert isinstance(arguments["order_id"], str) and arguments["order_id"]
    assert type(arguments["count"]) is int and type(arguments["express"]) is bool
    assert arguments["region"] in ("杭州", "上海")


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12"]) as mock:
        yield mock.url


@pytest.fixture
def sdk(mock_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="k", max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def claude(mock_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=mock_url, api_key="k", max_retries=0, timeout=20) as client:
        yield client


def test_chat_completions_call_streamed_and_not(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=CHAT_TOOLS)  # type: ignore[arg-type]
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "order_status"
    check_arguments(call.function.arguments)
    options = {"include_usage": True}
    with sdk.chat.completions.stream(
        model=MODEL,
        messages=QUESTION,
        tools=CHAT_TOOLS,
        stream_options=options,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    [call] = choice.message.tool_calls or []
    assert choice.finish_reason == "tool_calls" and call.function.name == "order_status"
    check_arguments(call.function.arguments)
    assert final.usage is not None and final.usage.completion_tokens == -(-len(call.function.arguments) // 4)


def test_chat_completions_answers_in_text_after_the_tool_results(sdk: openai.OpenAI) -> None:
    first = sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=CHAT_TOOLS)  # type: ignore[arg-type]
    message = first.choices[0].message
    [call] = message.tool_calls or []
    history = [
        *QUESTION,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "已发货"},
    ]
    answer = sdk.chat.completions.create(model=MODEL, messages=history, tools=CHAT_TOOLS)  # type: ignore[arg-type]
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content
    assert answer.choices[0].message.tool_calls is None
    none = sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=CHAT_TOOLS, tool_choice="none")  # type: ignore[arg-type]
    assert none.choices[0].finish_reason == "stop" and none.choices[0].message.tool_calls is None


def test_responses_call_streamed_and_not(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model=MODEL, input="我的订单到哪了？", tools=RESPONSES_TOOLS) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    [item] = final.output
    assert item.type == "function_call" and item.name == "order_status" and item.status == "completed"
    assert item.call_id.startswith("call_") and item.id and item.id.startswith("fc_")
    check_arguments(item.arguments)
    assert kinds[2] == "response.output_item.added" and kinds[-1] == "response.completed"
    assert (
        "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    )
    answer = sdk.responses.create(model=MODEL, input="我的订单到哪了？", tools=RESPONSES_TOOLS)  # type: ignore[arg-type]
    assert [item.type for item in answer.output] == ["function_call"]
    results = [
        {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments},
        {"type": "function_call_output", "call_id": item.call_id, "output": "已发货"},
    ]
    text = sdk.responses.create(model=MODEL, input=[*QUESTION, *results], tools=RESPONSES_TOOLS)  # type: ignore[list-item,arg-type]
    assert [item.type for item in text.output] == ["message"] and text.output_text


def test_messages_call_streamed_and_not(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=CLAUDE, max_tokens=200, messages=QUESTION, tools=MESSAGES_TOOLS
    ) as stream:  # type: ignore[arg-type]
        deltas = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    [block] = final.content
    assert final.stop_reason == "tool_use" and block.type == "tool_use" and block.name == "order_status"
    assert block.id.startswith("toolu_") and set(deltas) == {"input_json_delta"}
    check_arguments(orjson.dumps(block.input).decode())
    assert final.usage.output_tokens == len(deltas)  # one token per piece at --tokens-per-chunk 1
    message = claude.messages.create(model=CLAUDE, max_tokens=200, messages=QUESTION, tools=MESSAGES_TOOLS)  # type: ignore[arg-type]
    [block] = message.content
    assert message.stop_reason == "tool_use" and block.type == "tool_use"
    check_arguments(orjson.dumps(block.input).decode())
    results = [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "已发货"}]},
    ]
    text = claude.messages.create(
        model=CLAUDE, max_tokens=200, messages=[*QUESTION, *results], tools=MESSAGES_TOOLS
    )  # type: ignore[arg-type]
    assert text.stop_reason == "end_turn" and [block.type for block in text.content] == ["text"]


def test_max_tokens_cuts_a_call_short(sdk: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    answer = sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=CHAT_TOOLS, max_tokens=2)  # type: ignore[arg-type]
    [call] = answer.choices[0].message.tool_calls or []
    assert answer.choices[0].finish_reason == "length" and len(call.function.arguments) == 8
    assert answer.usage is not None and answer.usage.completion_tokens == 2
    with claude.messages.stream(
        model=CLAUDE, max_tokens=2, messages=QUESTION, tools=MESSAGES_TOOLS
    ) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 2


@pytest.mark.parametrize(
    ("dialect", "path", "tools", "finish_reason"),
    [
        (OPENAI, "/v1/chat/completions", CHAT_TOOLS, "tool_calls"),
        (ANTHROPIC, "/v1/messages", MESSAGES_TOOLS, "tool_use"),
        (OPENAI_RESPONSES, "/v1/responses", RESPONSES_TOOLS, "completed"),
    ],
    ids=["openai", "anthropic", "openai-responses"],
)
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_our_conversation_asks_calls_and_gets_the_answer(
    mock_url: str,
    dialect: ChatDialect,
    path: str,
    tools: list[dict[str, Any]],
    finish_reason: str,
    stream: bool,
) -> None:
    conversation = Conversation(conversation_chat(dialect, mock_url + path, stream), lambda: 0.0)
    first = conversation.ask("我的订单到哪了？", tools=tools, max_tokens=200)
    [call] = first.tool_calls
    assert first.ok and first.record.finish_reason == finish_reason
    assert call.name == "order_status" and call.id
    check_arguments(call.arguments)
    assert first.record.output_tokens == -(-len(call.arguments) // 4)
    conversation.add_tool_result(call.id, "已发货")
    second = conversation.reply(tools=tools, max_tokens=200)
    assert second.ok, second.record.failure_message
    assert second.tool_calls == () and second.text and second.record.output_tokens == 12


def test_tool_call_rate_zero_answers_in_text_unless_a_call_is_required() -> None:
    with (
        MockProcess(["--ttft-ms", "1", "--itl-ms", "0", "--tool-call-rate", "0"]) as mock,
        openai.OpenAI(base_url=f"{mock.url}/v1", api_key="k", max_retries=0, timeout=20) as sdk,
    ):
        text = sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=CHAT_TOOLS)  # type: ignore[arg-type]
        forced = sdk.chat.completions.create(
            model=MODEL,
            messages=QUESTION,  # type: ignore[arg-type]
            tools=CHAT_TOOLS,  # type: ignore[arg-type]
            tool_choice="required",
        )
    assert text.choices[0].finish_reason == "stop" and text.choices[0].message.tool_calls is None
    assert forced.choices[0].finish_reason == "tool_calls" and forced.choices[0].message.tool_calls


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_tool_call_rate_is_a_probability(rate: float) -> None:
    with pytest.raises(ValueError, match="--tool-call-rate: must be a probability"):
        MockConfig(tool_call_rate=rate)


def test_a_bad_tool_call_rate_stops_the_cli_with_one_line() -> None:
    command = [sys.executable, "-m", "locust_aiapi.mock", "--port", "0", "--tool-call-rate", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "--tool-call-rate" in done.stderr


def test_arguments_follow_the_schema_within_bounds() -> None:
    rng = random.Random(7)
    for _ in range(20):
        check_arguments(tool_arguments(SCHEMA, rng))
    assert tool_arguments({}, rng) == "{}"
    assert tool_arguments({"type": "string"}, rng) == "{}"  # the arguments are an object
    no_required = {
        "properties": {
            "x": {"type": ["null", "number"]},
            "y": {"type": "array", "items": {"type": "integer"}},
        }
    }
    values = orjson.loads(tool_arguments(no_required, rng))
    assert sorted(values) == ["x", "y"] and isinstance(values["x"], float) and type(values["y"][0]) is int
    wide = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(10_000)}}
    assert len(orjson.loads(tool_arguments(wide, rng))) == MAX_PROPERTIES
    deep: dict[str, Any] = {"type": "object", "properties": {}}
    node = deep
    for _ in range(500):
        child: dict[str, Any] = {"type": "object", "properties": {}}
        node["properties"]["next"] = child
        node = child
    depth, value = 0, orjson.loads(tool_arguments(deep, rng))
    while value:
        depth, value = depth + 1, value["next"]
    assert depth == MAX_DEPTH


def test_tools_calls_and_results_count_as_prompt_tokens(
    sdk: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    """A model reads the tools' definitions, its own calls and their results: the mock counts their
    characters / 4 too (a real API counts them in its own way; without them an agent's prompt is short)."""
    question = len(QUESTION[0]["content"])
    plain = sdk.chat.completions.create(model=MODEL, messages=QUESTION)  # type: ignore[arg-type]
    first = sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=CHAT_TOOLS)  # type: ignore[arg-type]
    assert plain.usage is not None and plain.usage.prompt_tokens == max(1, question // 4)
    assert first.usage is not None
    assert first.usage.prompt_tokens == (question + len(orjson.dumps(CHAT_TOOLS))) // 4
    [call] = first.choices[0].message.tool_calls or []
    result = {"role": "tool", "tool_call_id": call.id, "content": "已发货" * 10}
    history = [*QUESTION, first.choices[0].message.model_dump(exclude_none=True), result]
    answer = sdk.chat.completions.create(model=MODEL, messages=history, tools=CHAT_TOOLS)  # type: ignore[arg-type]
    read = (
        question + len(orjson.dumps(CHAT_TOOLS)) + len(call.function.name) + len(call.function.arguments) + 30
    )
    assert answer.usage is not None and answer.usage.prompt_tokens == read // 4
    message = claude.messages.create(model=CLAUDE, max_tokens=200, messages=QUESTION, tools=MESSAGES_TOOLS)  # type: ignore[arg-type]
    [block] = message.content
    assert block.type == "tool_use"
    results = [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "已发货" * 10}],
        },
    ]
    answer_tokens = claude.messages.create(
        model=CLAUDE,
        max_tokens=200,
        messages=[*QUESTION, *results],
        tools=MESSAGES_TOOLS,  # type: ignore[arg-type]
    ).usage.input_tokens
    tools = len(orjson.dumps(MESSAGES_TOOLS))
    assert message.usage.input_tokens == (question + tools) // 4
    assert answer_tokens == (question + tools + len(block.name) + len(orjson.dumps(block.input)) + 30) // 4
    asked = sdk.responses.create(model=MODEL, input="我的订单到哪了？", tools=RESPONSES_TOOLS)  # type: ignore[arg-type]
    [item] = asked.output
    assert item.type == "function_call" and asked.usage is not None
    assert asked.usage.input_tokens == (question + len(orjson.dumps(RESPONSES_TOOLS))) // 4


def test_max_tokens_below_a_piece_still_bounds_the_call() -> None:
    with (
        MockProcess(["--ttft-ms", "1", "--itl-ms", "0", "--tokens-per-chunk", "8"]) as mock,
        openai.OpenAI(base_url=f"{mock.url}/v1", api_key="k", max_retries=0, timeout=20) as sdk,
    ):
        answer = sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=CHAT_TOOLS, max_tokens=3)  # type: ignore[arg-type]
    [call] = answer.choices[0].message.tool_calls or []
    assert answer.choices[0].finish_reason == "length" and len(call.function.arguments) == 12
    assert answer.usage is not None and answer.usage.completion_tokens == 3
