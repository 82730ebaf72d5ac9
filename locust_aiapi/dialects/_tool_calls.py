"""Tool calls in OpenAI's Chat Completions format, as the streamed and non-streamed parsers keep them
(Anthropic's ``tool_use`` blocks too: :mod:`.anthropic_stream`).

A streamed call arrives in deltas keyed by ``index``: the first carries ``id``, ``type`` and the
function's ``name``, later ones pieces of ``arguments`` (JSON text, kept as received, not parsed). The
first id and name sent win; each is cut to 200 characters; an id the server left out becomes
``call_<index>``, so a conversation can still answer the call. The number of calls is bounded by the
parser (``MAX_TOOL_CALLS``), the arguments by the response limits like any text.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from .._errors import ProtocolError
from .._records import ToolCall
from ._json import TextPieces, describe, short_text

__all__ = [
    "MAX_TOOL_CALLS",
    "ToolCallParts",
    "check_room_for_call",
    "function_call_of",
    "input_json",
    "message_tool_calls",
    "needs_translation",
    "without_chat_fields",
]

MAX_TOOL_CALLS: Final = 128
"""Distinct tool calls kept per answer; more is a protocol error. Each call's id and name are cut
to 200 characters; its arguments are bounded like the answer's text (by the response limits)."""


class ToolCallParts:
    """One tool call as its deltas arrive: the first id and name sent, and the argument pieces."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments = TextPieces()

    def identify(self, call_id: object, name: object) -> None:
        if self.id is None:
            self.id = short_text(call_id)
        if self.name is None:
            self.name = short_text(name)

    def call(self, index: int) -> ToolCall:
        return ToolCall(id=self.id or f"call_{index}", name=self.name or "", arguments=str(self.arguments))


def message_tool_calls(message: dict[str, Any], limit: int) -> tuple[ToolCall, ...]:
    """A chat completion message's function calls (a legacy ``function_call`` as one); more than
    ``limit`` is a protocol error, as in a stream."""
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ProtocolError("tool_calls is not a list")
    if len(calls) > limit:
        raise ProtocolError(f"the answer has more than {limit} tool calls")
    found = []
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            found.append(_tool_call(function, call.get("id"), index))
    legacy = message.get("function_call")
    if not found and isinstance(legacy, dict):
        found.append(_tool_call(legacy, None, 0))
    return tuple(found)


def _tool_call(function: dict[str, Any], call_id: object, index: int) -> ToolCall:
    arguments = function.get("arguments")
    return ToolCall(
        id=short_text(call_id) or f"call_{index}",
        name=short_text(function.get("name")) or "",
        arguments=arguments if isinstance(arguments, str) else "",
    )


def function_call_of(item: dict[str, Any], index: int) -> ToolCall:
    """A Responses ``function_call`` output item as a call (its ``call_id`` is what the result names)."""
    arguments = item.get("arguments")
    return ToolCall(
        id=short_text(item.get("call_id")) or short_text(item.get("id")) or f"call_{index}",
        name=short_text(item.get("name")) or "",
        arguments=arguments if isinstance(arguments, str) else "",
    )


def input_json(value: object) -> str:
    """An Anthropic tool input as JSON text: compact, ``{}`` for none (a short text when it is nested
    beyond orjson's 254 levels, which no API accepts back anyway)."""
    if value is None:
        return "{}"
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return describe(value, 200)


def check_room_for_call(calls: int) -> None:
    """Raise ProtocolError when an answer that has ``calls`` tool calls starts one more than allowed."""
    if calls >= MAX_TOOL_CALLS:
        raise ProtocolError(f"the answer has more than {MAX_TOOL_CALLS} tool calls")


_KEPT_FIELDS: Final = ("tool_calls", "reasoning_content", "thinking_blocks")


def needs_translation(messages: list[dict[str, Any]]) -> bool:
    """Whether a history holds what a conversation keeps beside the messages' text: tool calls, tool
    results, the ``reasoning_content`` it keeps for DeepSeek, the ``thinking_blocks`` it keeps for
    Anthropic (the common case, none: sent as it is)."""
    return any(
        message.get("role") == "tool" or any(field in message for field in _KEPT_FIELDS)
        for message in messages
    )


def without_chat_fields(message: dict[str, Any]) -> dict[str, Any]:
    """A message without the fields a conversation keeps beside its text (``tool_calls``,
    ``reasoning_content``, ``thinking_blocks``), which an API that does not know them refuses."""
    return {key: value for key, value in message.items() if key not in _KEPT_FIELDS}
