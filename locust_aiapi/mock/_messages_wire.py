"""The Anthropic Messages wire format: parse a request, encode stream events, answers and errors.

Event order, ids (``msg_…``) and usage placement follow what the Messages API sends: input usage
in ``message_start`` (with ``output_tokens`` 1, as the real API reports it), the cumulative totals in
``message_delta``, then ``message_stop``. Every event has its ``event:`` line and the same ``type`` in
its data, which is what the official SDK reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ._errors import OVERLOADED_MESSAGE, ApiError, bad_request, optional_positive_int, parse_json_object
from ._thinking import check_thinking, signature_of, thinking_on
from ._tokens import estimate_tokens
from ._tools import ToolCall, ToolMenu, json_length, tool_menu, tools_length

DEFAULT_MODEL = "claude-sonnet-4-5"
# The Messages API names its error types after the status (https://docs.anthropic.com/en/api/errors).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


@dataclass(frozen=True)
class MessagesRequest:
    model: str
    stream: bool
    max_tokens: int
    thinking: bool  # "thinking": {"type": "enabled", ...} or {"type": "adaptive"}
    prompt_tokens: int
    tools: ToolMenu | None = None  # what the answer may call (None: it answers in text)


def parse_messages_request(body: bytes) -> MessagesRequest:
    payload = parse_json_object(body)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: Field required (a non-empty list)", "messages")
    model = payload.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        raise bad_request("model: Input should be a valid string", "model")
    max_tokens = optional_positive_int(payload, "max_tokens")
    if max_tokens is None:
        raise bad_request("max_tokens: Field required", "max_tokens")
    thinks = thinking_on(payload, max_tokens)
    check_thinking(messages, thinks)
    system_length = _text_length(payload.get("system"))
    return MessagesRequest(
        model=model,
        stream=payload.get("stream") is True,
        max_tokens=max_tokens,
        thinking=thinks,
        prompt_tokens=estimate_tokens(
            system_length + sum(_message_length(m) for m in messages) + tools_length(payload.get("tools"))
        ),
        tools=tool_menu(payload, "messages"),
    )


def _message_length(message: object) -> int:
    if not isinstance(message, dict):
        raise bad_request("messages: each message must be an object", "messages")
    return _text_length(message.get("content"))


def _text_length(content: object) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):  # content blocks: [{"type": "text", "text": "..."}, ...]
        return sum(_block_length(block) for block in content if isinstance(block, dict))
    return 0


def _block_length(block: dict[str, Any]) -> int:
    """A text block's text, a tool call's name and input, a tool result's text (one level: no recursion)."""
    kind = block.get("type")
    if kind == "tool_use":
        name = block.get("name")
        return (len(name) if isinstance(name, str) else 0) + json_length(block.get("input"), "input")
    content = block.get("content") if kind == "tool_result" else [block]
    if isinstance(content, str):
        return len(content)
    texts = (
        (part.get("text") for part in content if isinstance(part, dict)) if isinstance(content, list) else ()
    )
    return sum(len(text) for text in texts if isinstance(text, str))


def error_body(error: ApiError) -> bytes:
    """An :class:`ApiError` in Anthropic's shape: ``{"type": "error", "error": {type, message}}``."""
    error_type = _ERROR_TYPES.get(error.status, "api_error")
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": error.message}})


class MessagesEncoder:
    """Encodes the events of one message; every event belongs to the same ``msg_`` id and model."""

    def __init__(self, model: str, prompt_tokens: int) -> None:
        self.message_id = f"msg_{os.urandom(12).hex()}"
        self.model = model
        self.prompt_tokens = prompt_tokens
        self._block = -1  # index of the open content block

    def start_events(self) -> list[bytes]:
        message = self._message([], None, output_tokens=1)
        return [_event("message_start", {"type": "message_start", "message": message}), PING_EVENT]

    def open_block(self, kind: str, call: ToolCall | None = None) -> bytes:
        """Closes the open block (if any) and opens the next one: ``text``, ``thinking``, or ``tool_use``
        for ``call`` (its input streams as JSON text)."""
        close = self.close_block()
        self._block += 1
        block: dict[str, object] = {"type": "text", "text": ""}
        if kind == "thinking":
            block = {"type": "thinking", "thinking": ""}
        elif call is not None:
            block = {"type": "tool_use", "id": call.call_id, "name": call.name, "input": {}}
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        return close + _event("content_block_start", start)

    def close_block(self) -> bytes:
        if self._block < 0:
            return b""
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._block})

    def delta_event(self, kind: str, text: str) -> bytes:
        delta = {"type": "text_delta", "text": text}
        if kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": text}
        elif kind == "tool_use":
            delta = {"type": "input_json_delta", "partial_json": text}
        return _event(
            "content_block_delta", {"type": "content_block_delta", "index": self._block, "delta": delta}
        )

    def signature_event(self, thinking: str) -> bytes:
        """The signature of the thinking block that is open, whose whole text is ``thinking``."""
        delta = {"type": "signature_delta", "signature": signature_of(thinking)}
        return _event(
            "content_block_delta", {"type": "content_block_delta", "index": self._block, "delta": delta}
        )

    def final_events(self, finish_reason: str, output_tokens: int) -> list[bytes]:
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP_REASONS[finish_reason], "stop_sequence": None},
            "usage": self._usage(output_tokens),
        }
        return [self.close_block(), _event("message_delta", delta), MESSAGE_STOP_EVENT]

    @staticmethod
    def error_event() -> bytes:
        error = {"type": "overloaded_error", "message": OVERLOADED_MESSAGE}
        return _event("error", {"type": "error", "error": error})

    def message(
        self, thinking: str, text: str, finish_reason: str, output_tokens: int, call: ToolCall | None = None
    ) -> bytes:
        """The whole message; with ``call``, ``text`` is the JSON text of its input."""
        content: list[dict[str, object]] = []
        if thinking:
            content.append({"type": "thinking", "thinking": thinking, "signature": signature_of(thinking)})
        if call is None:
            content.append({"type": "text", "text": text})
        else:
            content.append({"type": "tool_use", "id": call.call_id, "name": call.name, "input": _input(text)})
        return orjson.dumps(self._message(content, _STOP_REASONS[finish_reason], output_tokens))

    def _message(
        self, content: list[dict[str, object]], stop_reason: str | None, output_tokens: int
    ) -> dict[str, object]:
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": self._usage(output_tokens),
        }

    def _usage(self, output_tokens: int) -> dict[str, object]:
        return {
            "input_tokens": self.prompt_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            # the writes by cache lifetime, as the Messages API breaks them down (it caches nothing)
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output_tokens,
        }


def _input(text: str) -> object:
    """A tool call's input: its JSON text parsed (``{}`` when ``max_tokens`` cut it short)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}


def _event(name: str, payload: Mapping[str, object]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


PING_EVENT = _event("ping", {"type": "ping"})
MESSAGE_STOP_EVENT = _event("message_stop", {"type": "message_stop"})
