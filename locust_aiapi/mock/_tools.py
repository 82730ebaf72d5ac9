"""Tool calls: which function tools a request lets the model call, and arguments that fit a JSON schema.

A request that offers function tools (and does not say ``tool_choice: none``) is answered with one call
of one of them, unless its conversation ends with tool results: then the model answers in text, as an
agent loop expects (ask, call, results, answer). ``--tool-call-rate`` is the share of such answers that
call a tool (default 1); a ``tool_choice`` that requires a call, or names a tool, always gets one. A
choice of a built-in tool (web search, file search ...) gets text: the mock runs none.

:func:`tool_menu` reads the request (no randomness, so a bad ``tools`` or ``tool_choice`` is a 400 before
anything else happens); the planner then draws the tool and its arguments. The arguments follow the
schema (its required properties, or all of them, by type, ``enum``, ``const``, ``anyOf`` / ``oneOf``
(the first branch that is not null), ``allOf`` and local ``$ref``s), bounded so that a large or recursive
schema cannot make a large answer: at most :data:`MAX_PROPERTIES` properties per object and
:data:`MAX_DEPTH` levels of nesting, ``$ref`` hops included.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from ._errors import bad_request
from ._tokens import sample_tokens

__all__ = [
    "MAX_DEPTH",
    "MAX_PROPERTIES",
    "ToolCall",
    "ToolMenu",
    "Wire",
    "json_length",
    "tool_arguments",
    "tool_menu",
    "tools_length",
]

MAX_PROPERTIES: Final = 16
MAX_DEPTH: Final = 4
MAX_PARTS: Final = 8  # of an allOf: with the depth, at most 8**4 resolutions for the worst schema

Wire = Literal["chat", "messages", "responses"]
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class ToolCall:
    """The call an answer makes: the tool's name, and the id the client answers it with."""

    name: str
    call_id: str


@dataclass(frozen=True)
class ToolMenu:
    """The function tools the answer may call (name -> parameters schema); ``forced``: it must call one."""

    functions: dict[str, dict[str, Any]]
    forced: bool

    def pick(self, rng: random.Random, wire: Wire) -> tuple[ToolCall, dict[str, Any]]:
        name = rng.choice(sorted(self.functions))
        prefix = "toolu_" if wire == "messages" else "call_"
        return ToolCall(name, prefix + os.urandom(12).hex()), self.functions[name]


def json_length(value: object, field: str) -> int:
    """The characters of ``value``'s JSON text (what a model reads of a schema or a call's input);
    a 400 for what JSON cannot write back (nested deeper than orjson's 254 levels)."""
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        raise bad_request(f"'{field}' is nested too deeply.", field) from None


def tools_length(tools: object) -> int:
    """The characters the tools' definitions add to the prompt: their JSON text (a model reads them)."""
    return json_length(tools, "tools") if isinstance(tools, list) else 0


def tool_menu(payload: dict[str, Any], wire: Wire) -> ToolMenu | None:
    """What the answer may call; None: it answers in text. Raises a 400 for a bad ``tools`` or
    ``tool_choice`` (an unknown value, a tool it names that is not offered, a call required of none)."""
    tools = payload.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array.", "tools")
    found = (_function(tool, wire) for tool in tools)
    functions = dict(function for function in found if function is not None)
    choice = _choice(payload.get("tool_choice"), wire)
    if choice is None:
        return None
    forced, allowed = choice
    if allowed is not None:
        unknown = sorted(set(allowed) - set(functions) - {_name(tool) for tool in tools})
        if unknown:
            message = f"tool_choice names {unknown[0]!r}, which is not among the tools."
            raise bad_request(message, "tool_choice")
        functions = {name: functions[name] for name in allowed if name in functions}
        if not functions:  # it names a server tool (Anthropic's web search ...): the mock runs none
            return None
    if forced and not functions:
        raise bad_request("tool_choice requires a tool call, but no function tool is offered.", "tool_choice")
    if not functions or (not forced and _ends_with_tool_results(payload, wire)):
        return None
    return ToolMenu(functions, forced)


def _function(tool: object, wire: Wire) -> tuple[str, dict[str, Any]] | None:
    """``(name, parameters schema)`` of a function tool in the wire's spelling; None for anything else
    (Anthropic's server tools, Responses' built-in tools)."""
    if not isinstance(tool, dict):
        return None
    if wire == "chat":
        spec = tool.get("function") if tool.get("type", "function") == "function" else None
        name, schema = (spec.get("name"), spec.get("parameters")) if isinstance(spec, dict) else (None, None)
    elif wire == "messages":
        custom = tool.get("type") in (None, "custom")
        name, schema = (tool.get("name"), tool.get("input_schema")) if custom else (None, None)
    else:
        is_function = tool.get("type") == "function"
        name, schema = (tool.get("name"), tool.get("parameters")) if is_function else (None, None)
    if not isinstance(name, str) or not name:
        return None
    return name, schema if isinstance(schema, dict) else {}


def _name(tool: object) -> str | None:
    """The name a tool goes by, whatever its kind (a server tool's too)."""
    if not isinstance(tool, dict):
        return None
    spec = tool.get("function")
    name = spec.get("name") if isinstance(spec, dict) else tool.get("name")
    return name if isinstance(name, str) else None


_AUTO, _FORCED = ("auto", None), ("required", "any")


def _choice(value: object, wire: Wire) -> tuple[bool, list[str] | None] | None:
    """``(forced, the tools it allows: None for all)`` from ``tool_choice``; None: answer in text (``none``,
    or a built-in tool the mock does not run)."""
    if isinstance(value, str) or value is None:
        if value == "none":
            return None
        if value in _AUTO or value in _FORCED:
            return value in _FORCED, None
        raise bad_request(f"Invalid value for 'tool_choice': {value!r}.", "tool_choice")
    if not isinstance(value, dict):
        raise bad_request("'tool_choice' must be a string or an object.", "tool_choice")
    kind = value.get("type")
    if kind == "allowed_tools":
        return _allowed(value.get("allowed_tools") if wire == "chat" else value, wire)
    if kind in ("function", "tool"):
        name = value["function"].get("name") if isinstance(value.get("function"), dict) else value.get("name")
        if not isinstance(name, str):
            raise bad_request("tool_choice must name its tool.", "tool_choice")
        return True, [name]
    if wire == "messages" and kind in ("auto", "any", "none"):  # Anthropic's {"type": "auto"}
        return _choice(kind, wire)
    return None  # a built-in tool (web search, file search, a custom tool ...): its answer is no call here


def _allowed(spec: object, wire: Wire) -> tuple[bool, list[str] | None] | None:
    if not isinstance(spec, dict) or not isinstance(spec.get("tools"), list):
        raise bad_request("allowed_tools must list its tools.", "tool_choice")
    found = (_function(tool, wire) for tool in spec["tools"])
    names = [function[0] for function in found if function is not None]
    choice = _choice(spec.get("mode", "auto"), wire)
    return None if choice is None or not names else (choice[0], names)


def _ends_with_tool_results(payload: dict[str, Any], wire: Wire) -> bool:
    items = payload.get("input" if wire == "responses" else "messages")
    if not isinstance(items, list) or not items or not isinstance(items[-1], dict):
        return False
    last = items[-1]
    if wire == "chat":
        return last.get("role") in ("tool", "function")
    if wire == "responses":
        return last.get("type") == "function_call_output"
    return holds_tool_results(last)


def holds_tool_results(message: object) -> bool:
    """Whether a Messages API message holds ``tool_result`` blocks (a user message answering calls)."""
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def tool_arguments(schema: dict[str, Any], rng: random.Random) -> str:
    """Arguments for ``schema`` as compact JSON text (an object, ``{}`` for a schema without properties)."""
    value = _value(schema, schema, rng, 0)
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def _value(schema: object, root: dict[str, Any], rng: random.Random, depth: int) -> object:
    schema = _resolved(schema, root, depth)
    if not isinstance(schema, dict):
        return "mock"
    if "const" in schema and isinstance(schema["const"], _SCALARS):
        return schema["const"]
    given = schema.get("enum")
    enum = [value for value in given if isinstance(value, _SCALARS)] if isinstance(given, list) else []
    if enum:
        return rng.choice(enum[:MAX_PROPERTIES])
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the first that is not null
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        return _object(schema, root, rng, depth)
    if kind == "array":
        return [] if depth >= MAX_DEPTH else [_value(schema.get("items"), root, rng, depth + 1)]
    return _scalar(kind, rng)


def _resolved(schema: object, root: dict[str, Any], depth: int) -> object:
    """``schema`` with its local ``$ref``, ``anyOf`` / ``oneOf`` (first branch not null) and ``allOf``
    (properties merged) taken apart, within :data:`MAX_DEPTH` steps."""
    for _ in range(MAX_DEPTH - min(depth, MAX_DEPTH)):
        if not isinstance(schema, dict):
            return schema
        ref = schema.get("$ref")
        branches = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(ref, str) and ref.startswith("#/"):
            schema = _pointed(root, ref)
        elif isinstance(branches, list) and branches:
            schema = next((b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")), {})
        elif isinstance(schema.get("allOf"), list):
            schema = _merged([_resolved(part, root, depth + 1) for part in schema["allOf"][:MAX_PARTS]])
        else:
            return schema
    return (
        schema if isinstance(schema, dict) and not {"$ref", "anyOf", "oneOf", "allOf"} & set(schema) else {}
    )


def _pointed(root: dict[str, Any], ref: str) -> object:
    node: object = root
    for key in ref[2:].split("/"):
        node = node.get(key.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
    return node


def _merged(parts: list[object]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for part in parts:
        if isinstance(part, dict):
            given, names = part.get("properties"), part.get("required")
            properties.update(given if isinstance(given, dict) else {})
            required += [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    return {"type": "object", "properties": properties, "required": required}


def _object(
    schema: dict[str, Any], root: dict[str, Any], rng: random.Random, depth: int
) -> dict[str, object]:
    properties = schema.get("properties")
    if depth >= MAX_DEPTH or not isinstance(properties, dict):
        return {}
    required = schema.get("required")
    names = (
        [n for n in required if isinstance(n, str) and n in properties] if isinstance(required, list) else []
    )
    names = (names or list(properties))[:MAX_PROPERTIES]
    return {str(name): _value(properties[name], root, rng, depth + 1) for name in names}


def _scalar(kind: object, rng: random.Random) -> object:
    if kind == "integer":
        return rng.randint(1, 1000)
    if kind == "number":
        return round(rng.uniform(0.0, 1000.0), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return "".join(sample_tokens(rng, 3)).strip() or "mock"
