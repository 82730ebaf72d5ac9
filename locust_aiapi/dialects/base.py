"""The extension point for API dialects: what the I/O loop needs from a wire format.

A dialect turns a chat request into bytes and bytes back into answers; it never does I/O.
Adding Anthropic Messages or OpenAI Responses means writing one more module that satisfies
:class:`ChatDialect` and :class:`ChatStreamParser`; the I/O loop does not change.

The loop feeds every SSE event to :meth:`ChatStreamParser.feed` and reads its bit mask: with
:data:`TOKEN` set, the event's arrival time is a token time (first one = TTFT); with
:data:`CONTENT` also set, it carried visible answer text (not just reasoning or tool calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from .._errors import ConfigurationError, ProtocolError
from .._records import Usage
from .._sse import SSEEvent

__all__ = [
    "CONTENT",
    "ChatCompletion",
    "ChatDialect",
    "ChatStreamParser",
    "StreamError",
    "TOKEN",
    "encode_json",
    "error_message_of",
    "excerpt",
    "load_json_object",
    "usage_of",
]

TOKEN: Final = 1
"""The event carried at least one generated token (content, reasoning or tool-call text)."""
CONTENT: Final = 2
"""The event carried visible answer content (always set together with :data:`TOKEN`)."""


@dataclass(slots=True, frozen=True)
class ChatCompletion:
    """A parsed non-streamed chat answer."""

    text: str
    reasoning: str
    usage: Usage | None
    finish_reason: str | None


@dataclass(slots=True, frozen=True)
class StreamError:
    """An error object the server sent inside an otherwise successful (HTTP 200) stream."""

    message: str
    type: str | None
    code: str | None


class ChatStreamParser(Protocol):
    """Parses the SSE events of one streamed chat answer. Never raises on server input."""

    def feed(self, event: SSEEvent) -> int:
        """Parse one event; return a mask of :data:`TOKEN` / :data:`CONTENT` (0 if neither)."""
        ...

    @property
    def done(self) -> bool:
        """The dialect's explicit end-of-stream marker was seen (``[DONE]`` for OpenAI)."""
        ...

    @property
    def finished(self) -> bool:
        """The answer ended properly (end marker or finish reason): not truncated."""
        ...

    @property
    def error(self) -> StreamError | None:
        """The in-stream error object, if the server sent one."""
        ...

    @property
    def protocol_error(self) -> str | None:
        """A short description of the first unparseable event, if any."""
        ...

    @property
    def usage(self) -> Usage | None: ...

    @property
    def finish_reason(self) -> str | None: ...

    @property
    def token_chunks(self) -> int:
        """How many events returned :data:`TOKEN`."""
        ...

    @property
    def text(self) -> str:
        """The visible answer received so far."""
        ...

    @property
    def reasoning(self) -> str:
        """The reasoning ("thinking") text received so far."""
        ...


class ChatDialect(Protocol):
    """A chat wire format: request bodies, response parsing and error messages."""

    @property
    def name(self) -> str: ...

    @property
    def chat_path(self) -> str:
        """The URL path of the chat endpoint, e.g. ``/v1/chat/completions``."""
        ...

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
        """The JSON request body; ``extra_body`` is merged last so it can override anything."""
        ...

    def stream_parser(self) -> ChatStreamParser:
        """A fresh parser for one streamed answer."""
        ...

    def parse_chat_response(self, body: bytes) -> ChatCompletion:
        """Parse a non-streamed answer; raise :class:`~locust_aiapi._errors.ProtocolError`."""
        ...

    def parse_error_message(self, body: bytes) -> str:
        """The server's human-readable message in an error body, or a short excerpt of it."""
        ...


# -- helpers for dialect implementations ------------------------------------------------------


def encode_json(body: Mapping[str, Any]) -> bytes:
    """A request body as JSON; a value that cannot be encoded is the user's configuration error."""
    try:
        return orjson.dumps(dict(body))
    except orjson.JSONEncodeError as exc:
        raise ConfigurationError(f"the request body cannot be encoded as JSON: {exc}") from None


def load_json_object(body: bytes, what: str) -> dict[str, Any]:
    """Parse a response body that must be a JSON object, else raise :class:`ProtocolError`."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    return value


def usage_of(value: object) -> Usage | None:
    """A :class:`Usage` from an object with its field names (OpenAI's ``usage``), else None."""
    if not isinstance(value, dict):
        return None
    return Usage(
        prompt_tokens=_int_or_none(value.get("prompt_tokens")),
        completion_tokens=_int_or_none(value.get("completion_tokens")),
        total_tokens=_int_or_none(value.get("total_tokens")),
    )


def _int_or_none(value: object) -> int | None:
    return value if type(value) is int else None


def error_message_of(value: object) -> str | None:
    """The human message in a parsed error body, or None.

    Understands ``{"error": {"message": ...}}`` (OpenAI, Anthropic), ``{"error": "..."}``,
    ``{"message": ...}``, ``{"detail": ...}`` (FastAPI, including its list of validation
    errors) and the same wrapped in a one-element list (some gateways).
    """
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict):
        return None
    for key in ("error", "message", "detail"):
        message = _text_of(value.get(key))
        if message:
            return message
    return None


def _text_of(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _text_of(value.get("message") or value.get("msg"))
    if isinstance(value, list):
        texts = [_text_of(item) for item in value]
        return "; ".join(text for text in texts if text) or None
    return None


def excerpt(text: str, limit: int) -> str:
    """``text`` with its whitespace collapsed, cut to at most ``limit`` characters."""
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"
