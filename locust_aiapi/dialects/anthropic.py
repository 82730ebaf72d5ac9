"""The Anthropic Messages dialect: ``POST /v1/messages``, ``x-api-key``, ``system`` at the top.

The stream parser is :mod:`.anthropic_stream`. Anthropic has no embeddings API, so
``embeddings`` is None and ``embed()`` says so. HTTP 529 (``overloaded_error``) is its own
failure kind, ``overloaded``: see :func:`failure_kind_for_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._errors import ProtocolError
from .._records import FailureKind, ThinkingBlock, ToolCall, Usage
from ._anthropic_history import anthropic_messages
from ._json import (
    encode_json,
    error_message_of,
    error_message_of_body,
    error_object_message,
    excerpt,
    load_json_object,
    short_text,
)
from ._thinking_blocks import THINKING_KINDS, ThinkingData, thinking_block
from ._tool_calls import check_room_for_call, input_json
from .anthropic_stream import AnthropicStream, anthropic_usage, usage_from
from .base import ChatCompletion, EmbeddingsDialect

__all__ = ["ANTHROPIC", "AnthropicDialect", "failure_kind_for_status"]

ANTHROPIC_VERSION: Final = "2023-06-01"
OVERLOADED_STATUS: Final = 529
_MAX_BLOCKS: Final = 1024  # content blocks read from a non-streamed answer
_EXCERPT_CHARS: Final = 200
_MESSAGE_CHARS: Final = 500


def failure_kind_for_status(status: int) -> FailureKind | None:
    """The failure kind of an HTTP status that is not the generic 4xx/5xx one, else None.

    HTTP 529 is Anthropic's "overloaded": load shedding, not a bug; retried like a 5xx.
    """
    return FailureKind.OVERLOADED if status == OVERLOADED_STATUS else None


@dataclass(frozen=True, slots=True)
class AnthropicDialect:
    """Anthropic Messages (a ``ChatDialect``).

    ``default_max_tokens`` is sent when the user sends none: the API requires ``max_tokens``.
    Thinking is switched on through ``extra_body``: ``{"thinking": {"type": "enabled",
    "budget_tokens": 1024}}``.
    """

    name: str = "anthropic"
    chat_path: str = "/v1/messages"
    version: str = ANTHROPIC_VERSION
    """The ``anthropic-version`` header."""
    default_max_tokens: int = 4096
    embeddings: EmbeddingsDialect | None = None

    def auth_headers(self, api_key: str) -> Mapping[str, str]:
        if not api_key:
            return {}
        return {"x-api-key": api_key, "anthropic-version": self.version}

    def build_chat_request(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int | None,
        temperature: float | None,
        stream: bool,
        extra_body: Mapping[str, Any],
    ) -> bytes:
        system = [m.get("content") for m in messages if m.get("role") == "system"]
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": self.default_max_tokens if max_tokens is None else max_tokens,
            "messages": anthropic_messages([m for m in messages if m.get("role") != "system"]),
        }
        if system:
            body["system"] = system[0] if len(system) == 1 else "\n\n".join(map(str, system))
        if temperature is not None:
            body["temperature"] = temperature
        if stream:
            body["stream"] = True
        body.update(extra_body)
        return encode_json(body)

    def failure_kind_for_status(self, status: int) -> FailureKind | None:
        """HTTP 529 is ``overloaded`` (see :func:`~.base.status_failure_kind`)."""
        return failure_kind_for_status(status)

    def stream_parser(self) -> AnthropicStream:
        return AnthropicStream()

    def parse_chat_response(self, body: bytes) -> ChatCompletion:
        message = load_json_object(body, "message")
        if message.get("type") == "error" or message.get("error") is not None:
            text = excerpt(error_message_of(message) or "(no message)", _MESSAGE_CHARS)
            raise ProtocolError(f"error instead of a message: {text}")
        content = message.get("content")
        if not isinstance(content, list):
            raise ProtocolError("message has no content list")
        try:
            return _completion_of(message, content)
        except (AttributeError, TypeError, LookupError):
            raise ProtocolError("message has an unexpected structure") from None

    def parse_error_message(self, body: bytes) -> str:
        return error_message_of_body(body, _MESSAGE_CHARS, _EXCERPT_CHARS)

    def parse_body_error(self, body: bytes) -> str | None:
        return error_object_message(body, ("type", "error"), _MESSAGE_CHARS, _EXCERPT_CHARS)


ANTHROPIC: Final = AnthropicDialect()


def _completion_of(message: dict[str, Any], content: list[Any]) -> ChatCompletion:
    texts: list[str] = []
    thinking: list[str] = []
    tools: list[ToolCall] = []
    signed: list[ThinkingBlock] = []
    data = ThinkingData()
    for block in content[:_MAX_BLOCKS]:
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind in THINKING_KINDS:  # a field of the wrong type is a protocol error there
            kept = thinking_block(block, len(tools), data)
            if kept is not None:
                signed.append(kept)
            if kind == "thinking":
                thinking.append(block.get("thinking", ""))
        elif kind == "tool_use":
            check_room_for_call(len(tools))
            tools.append(_tool_call(block, len(tools)))
    stop_reason = message.get("stop_reason")
    if stop_reason is not None and short_text(stop_reason) is None:
        raise ProtocolError("stop_reason is not a string")
    return ChatCompletion(
        text="".join(texts) or "\n".join(call.arguments for call in tools),
        reasoning="".join(thinking),
        usage=_usage_of(message.get("usage")),
        finish_reason=short_text(stop_reason),
        model=short_text(message.get("model")),
        tool_calls=tuple(tools),
        thinking_blocks=tuple(signed),
    )


def _tool_call(block: dict[str, Any], index: int) -> ToolCall:
    """A ``tool_use`` block as a call: its input as JSON text (``{}`` when it has none)."""
    name = short_text(block.get("name")) or ""
    return ToolCall(short_text(block.get("id")) or f"call_{index}", name, input_json(block.get("input")))


def _usage_of(value: object) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError("usage is not a JSON object")
    return usage_from(*anthropic_usage(value))
