"""Tool calls: which function tool a request offers, and arguments that fit its JSON schema.

A request that offers function tools (and does not say ``tool_choice: none``) is answered with one call
of one of them, unless its conversation ends with tool results: then the model answers in text, as an
agent loop expects (ask, call, results, answer). ``--tool-call-rate`` is the share of such answers that
call a tool (default 1); a ``tool_choice`` that requires a call, or names a tool, always gets one.

The arguments follow the tool's schema (its required properties, or all of them, by type and ``enum``),
bounded so that a large or recursive schema cannot make a large answer: at most
:data:`MAX_PROPERTIES` properties per object and :data:`MAX_DEPTH` levels of nesting.
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
    "ToolOffer",
    "Wire",
    "offered_tool",
    "tool_arguments",
    "tools_length",
]

MAX_PROPERTIES: Final = 16
MAX_DEPTH: Final = 4

Wire = Literal["chat", "messages", "responses"]


@dataclass(frozen=True)
class ToolOffer:
    """The function tool a request lets the model call; ``forced``: its ``tool_choice`` demands a call."""

    name: str
    schema: dict[str, Any]
    forced: bool


@dataclass(frozen=True)
class ToolCall:
    """The call an answer makes: the tool's name, and the id the client answers it with."""

    name: str
    call_id: str

    @classmethod
    def of(cls, offer: ToolOffer, wire: Wire) -> ToolCall:
        prefix = "toolu_" if wire == "messages" else "call_"
        return cls(offer.name, prefix + os.urandom(12).hex())


def tools_length(tools: object) -> int:
    """The characters the tools' definitions add to the prompt: their JSON text (a model reads them)."""
    return len(orjson.dumps(tools)) if isinstance(tools, list) else 0


def offered_tool(payload: dict[str, Any], wire: Wire, rng: random.Random) -> ToolOffer | None:
    """The tool the answer may call (None: it answers in text). Draws from ``rng`` only when tools
    are offered, so a seeded run without tools is as before."""
    tools = payload.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array.", "tools")
    found = (_function(tool, wire) for tool in tools)
    functions = dict(function for function in found if function is not None)
    choice = _choice(payload.get("tool_choice"), wire)
    if choice is None or not functions:
        return None
    forced, name = choice
    if name is not None and name not in functions:
        raise bad_request(f"tool_choice names {name!r}, which is not among the tools.", "tool_choice")
    if not forced and _ends_with_tool_results(payload, wire):
        return None
    name = name if name is not None else rng.choice(sorted(functions))
    return ToolOffer(name, functions[name], forced)


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


def _choice(value: object, wire: Wire) -> tuple[bool, str | None] | None:
    """``(forced, name)`` from ``tool_choice``; None: no call (``none``)."""
    if isinstance(value, dict):
        kind = value.get("type")
        if wire == "chat" and kind == "function" and isinstance(value.get("function"), dict):
            value = value["function"].get("name")
            return True, value if isinstance(value, str) else None
        if kind in ("tool", "function") and isinstance(value.get("name"), str):
            return True, value["name"]
        value = kind  # Anthropic's {"type": "auto" | "any" | "none"}
    if value == "none":
        return None
    return value in ("required", "any"), None


def _ends_with_tool_results(payload: dict[str, Any], wire: Wire) -> bool:
    items = payload.get("input" if wire == "responses" else "messages")
    if not isinstance(items, list) or not items or not isinstance(items[-1], dict):
        return False
    last = items[-1]
    if wire == "chat":
        return last.get("role") in ("tool", "function")
    if wire == "responses":
        return last.get("type") == "function_call_output"
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def tool_arguments(schema: dict[str, Any], rng: random.Random) -> str:
    """Arguments for ``schema`` as compact JSON text (an object, ``{}`` for a schema without properties)."""
    value = _value(schema, rng, 0)
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def _value(schema: object, rng: random.Random, depth: int) -> object:
    if not isinstance(schema, dict):
        return "mock"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return rng.choice(enum[:MAX_PROPERTIES])
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the first that is not null
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        return _object(schema, rng, depth)
    if kind == "array":
        return [] if depth >= MAX_DEPTH else [_value(schema.get("items"), rng, depth + 1)]
    return _scalar(kind, rng)


def _object(schema: dict[str, Any], rng: random.Random, depth: int) -> dict[str, object]:
    properties = schema.get("properties")
    if depth >= MAX_DEPTH or not isinstance(properties, dict):
        return {}
    required = schema.get("required")
    names = [name for name in required if name in properties] if isinstance(required, list) else []
    names = (names or list(properties))[:MAX_PROPERTIES]
    return {str(name): _value(properties[name], rng, depth + 1) for name in names}


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
