"""What the mock makes of the tools a request offers, hostile ones included: which tool an answer may
call (sans-IO, :func:`tool_menu`), schemas as SDKs write them (pydantic's ``$ref`` / ``anyOf``), and
requests that are wrong or built to hurt, which get a 400 in the API's own format, never a dropped
connection; a bug of ours is a 500 that ``/mock/stats`` counts."""

from __future__ import annotations

import http.client
import importlib
import json
import random
from collections.abc import Callable, Iterator
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import gevent
import orjson
import pydantic
import pytest

from locust_aiapi.mock import MockConfig, MockProcess, MockServer
from locust_aiapi.mock import _app as mock_app
from locust_aiapi.mock._errors import ApiError
from locust_aiapi.mock._tools import Wire, tool_arguments, tool_menu

from ._support import mock_stats

if TYPE_CHECKING:
    import openai
else:  # imported after Locust, whose gevent monkey-patching must come before the SDKs import ssl
    openai = importlib.import_module("openai")

T = TypeVar("T")
QUESTION = [{"role": "user", "content": "我的订单到哪了？"}]
TWO = [{"type": "function", "function": {"name": name}} for name in ("a", "b")]
MODEL = "gpt-4.1"


def offer(payload: dict[str, Any], wire: Wire) -> tuple[str, bool] | None:
    menu = tool_menu(payload, wire)
    return None if menu is None else (menu.pick(random.Random(1), wire)[0].name, menu.forced)


def test_which_tool_is_offered() -> None:
    assert offer({"messages": QUESTION}, "chat") is None  # no tools
    assert offer({"messages": QUESTION, "tools": []}, "chat") is None
    assert offer({"messages": QUESTION, "tools": TWO, "tool_choice": "none"}, "chat") is None
    assert offer({"messages": QUESTION, "tools": TWO}, "chat") in (("a", False), ("b", False))
    assert offer({"messages": QUESTION, "tools": TWO, "tool_choice": "required"}, "chat") in (
        ("a", True),
        ("b", True),
    )
    named = {"type": "function", "function": {"name": "b"}}
    assert offer({"messages": QUESTION, "tools": TWO, "tool_choice": named}, "chat") == ("b", True)
    after = [*QUESTION, {"role": "tool", "tool_call_id": "x", "content": "ok"}]
    assert offer({"messages": after, "tools": TWO}, "chat") is None
    assert offer({"messages": after, "tools": TWO, "tool_choice": named}, "chat") == ("b", True)


def test_which_tool_is_offered_by_anthropic_and_responses() -> None:
    server_tool = {"type": "web_search_20250305", "name": "web_search"}
    assert offer({"messages": QUESTION, "tools": [server_tool]}, "messages") is None
    tools = [server_tool, {"name": "lookup", "input_schema": {}}]
    assert offer({"messages": QUESTION, "tools": tools}, "messages") == ("lookup", False)
    assert offer({"messages": QUESTION, "tools": tools, "tool_choice": {"type": "any"}}, "messages") == (
        "lookup",
        True,
    )
    assert offer({"messages": QUESTION, "tools": tools, "tool_choice": {"type": "none"}}, "messages") is None
    search = {"type": "tool", "name": "web_search"}  # a server tool: the mock runs none, it answers in text
    assert offer({"messages": QUESTION, "tools": tools, "tool_choice": search}, "messages") is None
    results = [
        *QUESTION,
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
    ]
    assert offer({"messages": results, "tools": tools}, "messages") is None
    responses = [{"type": "web_search"}, {"type": "function", "name": "lookup"}]
    assert offer({"input": "q", "tools": responses}, "responses") == ("lookup", False)
    assert (
        offer({"input": "q", "tools": responses, "tool_choice": {"type": "web_search"}}, "responses") is None
    )
    output = [{"type": "function_call_output", "call_id": "c", "output": "ok"}]
    assert offer({"input": output, "tools": responses}, "responses") is None
    named = {"type": "function", "name": "lookup"}
    assert offer({"input": output, "tools": responses, "tool_choice": named}, "responses") == ("lookup", True)


def test_allowed_tools_narrow_the_choice() -> None:
    three = [*TWO, {"type": "function", "function": {"name": "c"}}]
    only_b = [{"type": "function", "function": {"name": "b"}}]
    for mode, forced in (("auto", False), ("required", True)):
        choice = {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": only_b}}
        assert offer({"messages": QUESTION, "tools": three, "tool_choice": choice}, "chat") == ("b", forced)
    responses = [{"type": "function", "name": name} for name in ("a", "b")]
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "a"}]}
    assert offer({"input": "q", "tools": responses, "tool_choice": choice}, "responses") == ("a", True)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"tools": {"name": "a"}}, "tools"),
        ({"tools": TWO, "tool_choice": {"type": "function", "function": {"name": "c"}}}, "tool_choice"),
        ({"tools": TWO, "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": TWO, "tool_choice": 42}, "tool_choice"),
        ({"tools": TWO, "tool_choice": {"type": "function", "function": {"name": ["a"]}}}, "tool_choice"),
        ({"tools": [], "tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [{"type": "function", "function": {"name": ""}}], "tool_choice": "required"},
            "tool_choice",
        ),
        (
            {
                "tools": TWO,
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {
                        "mode": "auto",
                        "tools": [{"type": "function", "function": {"name": "z"}}],
                    },
                },
            },
            "tool_choice",
        ),
        (
            {"tools": TWO, "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto"}}},
            "tool_choice",
        ),
    ],
    ids=[
        "tools-object",
        "unknown-name",
        "unknown-word",
        "number",
        "name-list",
        "none-to-force",
        "nameless",
        "allowed-unknown",
        "allowed-no-list",
    ],
)
def test_bad_tools_are_a_400(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as error:
        tool_menu({"messages": QUESTION, **payload}, "chat")
    assert error.value.status == 400 and error.value.param == field


class Region(str, Enum):
    HANGZHOU = "杭州"
    SHANGHAI = "上海"


class Address(pydantic.BaseModel):
    city: str
    region: Region


class OrderQuery(pydantic.BaseModel):
    order_id: str
    count: int
    express: bool
    note: str | None
    ship_to: Address
    history: list[Address]


def test_arguments_fit_the_schemas_pydantic_writes() -> None:
    """``$defs`` / ``$ref`` for the nested model and the enum, ``anyOf`` with null for the optional."""
    schema = openai.pydantic_function_tool(OrderQuery)["function"]["parameters"]
    assert "$defs" in schema and "anyOf" in json.dumps(schema)
    rng = random.Random(3)
    for _ in range(20):
        query = OrderQuery.model_validate_json(tool_arguments(schema, rng))
        assert query.ship_to.region in Region and isinstance(query.note, str)


def test_hostile_schemas_give_bounded_arguments() -> None:
    rng = random.Random(5)
    odd = {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"const": "fixed"},
            "c": {"enum": [{"x": 1}, [2], "ok"]},
        },
        "required": [["a"], {"b": 1}, 7],  # names that are not strings: ignored, so all properties
    }
    assert orjson.loads(tool_arguments(odd, rng)).keys() == {"a", "b", "c"}
    assert (
        orjson.loads(tool_arguments(odd, rng))["c"] == "ok"
        and orjson.loads(tool_arguments(odd, rng))["b"] == "fixed"
    )
    loop = {"$ref": "#", "type": "object"}  # a $ref to itself, and one that leads nowhere
    assert tool_arguments(loop, rng) == "{}"
    assert (
        tool_arguments({"type": "object", "properties": {"x": {"$ref": "#/$defs/none"}}}, rng)
        == '{"x":"mock"}'
    )
    parts = {
        "allOf": [{"properties": {f"p{i}": {"type": "boolean"}}, "required": [f"p{i}"]} for i in range(50)]
    }
    assert len(orjson.loads(tool_arguments(parts, rng))) == 8  # at most 8 parts of an allOf are read
    wide_all: dict[str, Any] = {"type": "object", "properties": {}}
    node = wide_all
    for _ in range(10):  # allOf of allOf ...: bounded by the depth, not 8**10 resolutions
        child: dict[str, Any] = {"allOf": [{"type": "object", "properties": {}}] * 8}
        node["properties"]["n"] = child
        node = child["allOf"][0]
    assert len(tool_arguments(wide_all, rng)) < 100


def _deep(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with MockProcess(["--ttft-ms", "1", "--itl-ms", "0", "--output-tokens", "4"]) as mock:
        yield mock.url


def post(url: str, path: str, payload: object) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    try:
        headers = {"content-type": "application/json", "authorization": "Bearer k", "x-api-key": "k"}
        connection.request("POST", path, json.dumps(payload), headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


DEEP = _deep(300)  # orjson reads 1,024 levels but writes only 254: the mock must not crash writing it back
HOSTILE = [
    (
        "/v1/chat/completions",
        {
            "model": MODEL,
            "messages": QUESTION,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": DEEP}}],
        },
    ),
    (
        "/v1/messages",
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 50,
            "messages": QUESTION,
            "tools": [{"name": "f", "input_schema": DEEP}],
        },
    ),
    (
        "/v1/messages",
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 50,
            "messages": [
                *QUESTION,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": DEEP}],
                },
            ],
        },
    ),
    (
        "/v1/responses",
        {"model": MODEL, "input": "q", "tools": [{"type": "function", "name": "f", "parameters": DEEP}]},
    ),
    (
        "/v1/chat/completions",
        {"model": MODEL, "messages": QUESTION, "tools": TWO, "tool_choice": "sometimes"},
    ),
]


@pytest.mark.parametrize(
    ("path", "payload"),
    HOSTILE,
    ids=["chat-deep", "messages-deep", "tool-use-deep", "responses-deep", "bad-choice"],
)
def test_hostile_requests_get_a_400_in_the_apis_format(mock_url: str, path: str, payload: object) -> None:
    before = mock_stats(mock_url)["outcomes"].get("client_error", 0)
    status, body = post(mock_url, path, payload)
    assert status == 400
    error = body["error"]
    assert error["message"] and (body.get("type") == "error" if path == "/v1/messages" else error["param"])
    after = mock_stats(mock_url)["outcomes"]
    assert after.get("client_error", 0) == before + 1 and after["server_error"] == 0


def test_odd_values_in_a_conversation_are_read_not_crashed_on(mock_url: str) -> None:
    """Non-string texts, names and arguments where strings belong: not counted, never a 500."""
    odd_tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"properties": {"a": {}}, "required": [["a"]]}},
    }
    history = [
        {"role": "user", "content": [{"type": "text", "text": 7}, {"type": "text", "text": None}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": 1, "arguments": {}}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
        {"role": "user", "content": "again"},
    ]
    status, body = post(
        mock_url, "/v1/chat/completions", {"model": MODEL, "messages": history, "tools": [odd_tool]}
    )
    assert status == 200, body
    [call] = body["choices"][0]["message"]["tool_calls"]
    assert orjson.loads(call["function"]["arguments"]).keys() == {"a"}
    blocks = [
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": ["x"]}]},
        {"type": "text", "text": {}},
    ]
    status, _ = post(
        mock_url,
        "/v1/messages",
        {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": blocks}]},
    )
    assert status == 200
    items = [
        {"type": "function_call", "call_id": "c", "name": 5, "arguments": None},
        {"type": "function_call_output", "call_id": "c", "output": ["x"]},
    ]
    status, _ = post(mock_url, "/v1/responses", {"model": MODEL, "input": items})
    assert status == 200
    assert mock_stats(mock_url)["outcomes"]["server_error"] == 0


def test_a_pydantic_tool_round_trips_through_the_sdk_parser(mock_url: str) -> None:
    """``chat.completions.parse`` validates the call's arguments against the model (strict schema)."""
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="k", max_retries=0, timeout=20) as sdk:
        answer = sdk.chat.completions.parse(
            model=MODEL,
            messages=QUESTION,
            tools=[openai.pydantic_function_tool(OrderQuery)],  # type: ignore[arg-type]
        )
        [call] = answer.choices[0].message.tool_calls or []
        assert isinstance(call.function.parsed_arguments, OrderQuery)
        with pytest.raises(openai.BadRequestError):
            sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=TWO, tool_choice="sometimes")  # type: ignore[arg-type]


def test_a_call_streams_as_openai_streams_one(mock_url: str) -> None:
    """Chat: the role chunk before a call has ``content: null`` (text answers: ``""``). Responses: a call
    cut at ``max_output_tokens`` is an ``incomplete`` item in an ``incomplete`` response."""
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="k", max_retries=0, timeout=20) as sdk:
        chunks = list(sdk.chat.completions.create(model=MODEL, messages=QUESTION, tools=TWO, stream=True))  # type: ignore[arg-type]
        plain = next(iter(sdk.chat.completions.create(model=MODEL, messages=QUESTION, stream=True)))  # type: ignore[arg-type]
        tools = [
            {
                "type": "function",
                "name": "f",
                "parameters": {"properties": {f"p{i}": {"type": "string"} for i in range(9)}},
            }
        ]
        with sdk.responses.stream(model=MODEL, input="q", tools=tools, max_output_tokens=2) as stream:  # type: ignore[arg-type]
            # the SDK's helper wants a response.completed; a cut answer ends with response.incomplete
            [final] = [event.response for event in stream if event.type == "response.incomplete"]
        whole = sdk.responses.create(model=MODEL, input="q", tools=tools, max_output_tokens=2)  # type: ignore[arg-type]
        complete = sdk.responses.create(model=MODEL, input="q", tools=tools)  # type: ignore[arg-type]
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and first.content is None and chunks[1].choices[0].delta.tool_calls
    assert plain.choices[0].delta.content == ""
    for response in (final, whole):
        [item] = response.output
        assert (
            response.status == "incomplete" and item.type == "function_call" and item.status == "incomplete"
        )
    assert complete.status == "completed" and complete.output[0].status == "completed"


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Runs a blocking client in gevent's thread pool while this thread's hub serves."""
    return gevent.get_hub().threadpool.apply(function, args)  # type: ignore[no-any-return]


def test_a_bug_in_a_handler_is_a_500_and_the_connection_lives_on(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken(state: object, exchange: object) -> None:
        raise KeyError("oops")

    for path in ("/v1/embeddings", "/v1/messages"):
        monkeypatch.setitem(mock_app.ROUTES, path, ("POST", broken))
    server = MockServer(MockConfig(port=0))
    url = server.start()
    try:
        parts = urlsplit(url)

        def exchange() -> list[tuple[int, dict[str, Any]]]:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
            answers = []
            for method, path in (
                ("POST", "/v1/embeddings"),
                ("POST", "/v1/messages"),
                ("GET", "/mock/stats"),
            ):
                connection.request(
                    method, path, "{}" if method == "POST" else None, {"authorization": "Bearer k"}
                )
                response = connection.getresponse()
                answers.append((response.status, json.loads(response.read())))
            connection.close()
            return answers

        (openai_status, openai_body), (claude_status, claude_body), (_, stats) = in_thread(exchange)
    finally:
        server.stop()
    assert openai_status == 500 and openai_body["error"]["type"] == "server_error"
    assert claude_status == 500 and claude_body["type"] == "error"
    assert stats["outcomes"]["server_error"] == 2
    err = capfd.readouterr().err
    assert "internal error answering POST /v1/embeddings: KeyError('oops')" in err
