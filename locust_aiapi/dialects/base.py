"""The extension point for API dialects: what the I/O loop needs from a wire format.

A dialect owns its wire format completely: the default path, the auth headers made from the
API key, request bodies, the stream parser, error messages and, where it has one, its
embeddings format. It never does I/O. Adding Anthropic Messages or OpenAI Responses means
writing one more module that satisfies :class:`ChatDialect` (and registering it in
:mod:`.registry`); the I/O loop does not change. Dialect instances are immutable.

The loop feeds every SSE event to :meth:`ChatStreamParser.feed` and reads its bit mask: with
:data:`TOKEN` set, the event's arrival time is a token time (first one = TTFT); with
:data:`CONTENT` also set, it carried visible answer text (not just reasoning or tool calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from .._records import FailureKind, ThinkingBlock, ToolCall, Usage
from .._sse import SSEEvent

__all__ = [
    "CONTENT",
    "ChatCompletion",
    "ChatDialect",
    "ChatStreamParser",
    "EmbeddingsDialect",
    "EmbeddingsResponse",
    "StreamError",
    "TOKEN",
    "chat_path_for",
    "embeddings_path_for",
    "status_failure_kind",
    "thinking_blocks_of",
    "tool_calls_of",
]

TOKEN: Final = 1
"""The event carried a token delta: the dialect's definition of one generated token.

For OpenAI: a content, reasoning or tool-call delta after the role chunk, empty text
included (llama.cpp sends ``"content": ""`` for a token whose bytes are not yet a whole
character). Without ``usage``, the output token count is the number of such events.
"""
CONTENT: Final = 2
"""The event carried visible answer text (always set together with :data:`TOKEN`)."""


@dataclass(slots=True, frozen=True)
class ChatCompletion:
    """A parsed non-streamed chat answer."""

    text: str
    reasoning: str
    usage: Usage | None
    finish_reason: str | None
    model: str | None = None
    """The model the server says answered (None when it did not say)."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The function calls of the answer, where the dialect keeps them."""
    thinking_blocks: tuple[ThinkingBlock, ...] = ()
    """The signed thinking blocks of the answer, where the dialect keeps them (Anthropic)."""


@dataclass(slots=True, frozen=True)
class StreamError:
    """An error object the server sent inside an otherwise successful (HTTP 200) stream."""

    message: str
    type: str | None
    code: str | None
    overloaded: bool = False
    """The server said it is overloaded (Anthropic's ``overloaded_error``): failure kind ``overloaded``."""


@dataclass(slots=True, frozen=True)
class EmbeddingsResponse:
    """A parsed embeddings answer: one vector per input, in input order."""

    vectors: list[list[float]]
    usage: Usage | None
    model: str | None = None


class ChatStreamParser(Protocol):
    """Parses the SSE events of one streamed chat answer. Never raises on server input.

    Events after the dialect's end marker (``[DONE]`` for OpenAI) are ignored.

    Optional, for speed: ``feed_data(data: bytes, event_type: str) -> int | None`` parses an event
    given as the UTF-8 bytes of its data, with the same result as :meth:`feed`, or returns None
    (having changed nothing) when it cannot, e.g. invalid UTF-8; the loop then calls :meth:`feed`. The
    loop uses it for a read holding exactly one event (see ``SSEDecoder.lone_data``): no event object
    and no decode per chunk. The built-in parsers have it; a parser without it gets every event.
    """

    def feed(self, event: SSEEvent) -> int:
        """Parse one event; return a mask of :data:`TOKEN` / :data:`CONTENT` (0 if neither)."""
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
        """A short description of the first unparseable or invalid event, if any."""
        ...

    @property
    def usage(self) -> Usage | None:
        """The server's last valid usage, if it sent one (every count already range-checked)."""
        ...

    @property
    def finish_reason(self) -> str | None: ...

    @property
    def model(self) -> str | None:
        """The model the server says answered (the first one it named)."""
        ...

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


class EmbeddingsDialect(Protocol):
    """An embeddings wire format: default path, request body, response parsing."""

    @property
    def path(self) -> str:
        """The URL path of the embeddings endpoint, e.g. ``/v1/embeddings``."""
        ...

    def build_request(
        self,
        *,
        model: str,
        input: str | list[str],
        dimensions: int | None,
        encoding_format: str,
        extra_body: Mapping[str, Any],
    ) -> bytes:
        """The JSON request body; ``extra_body`` is merged last so it can override anything."""
        ...

    def parse_response(
        self, body: bytes, *, expected_count: int, encoding_format: str, expected_dimensions: int | None
    ) -> EmbeddingsResponse:
        """Parse an answer; raise ``ProtocolError`` / ``InvalidResponseError``."""
        ...


class ChatDialect(Protocol):
    """A chat wire format: path, auth, request bodies, response parsing and error messages.

    A dialect whose path depends on the model or an API version (Azure's deployment URL) also has
    ``chat_url_path(model, api_version) -> str`` (and its embeddings format ``url_path``); the users
    ask :func:`chat_path_for`, which falls back to ``chat_path``.
    """

    @property
    def name(self) -> str:
        """The name ``--ai-dialect`` and ``AIChatUser.dialect`` choose it by."""
        ...

    @property
    def chat_path(self) -> str:
        """The default URL path of the chat endpoint, e.g. ``/v1/chat/completions``."""
        ...

    @property
    def embeddings(self) -> EmbeddingsDialect | None:
        """The dialect's embeddings format, or None when the API has none."""
        ...

    def auth_headers(self, api_key: str) -> Mapping[str, str]:
        """The headers that carry ``api_key`` (empty when the key is empty)."""
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

    def parse_body_error(self, body: bytes) -> str | None:
        """The server's message when ``body`` (the start of an answer that should have been a
        stream, e.g. an HTTP 200 ``application/json`` body) is an error object; else None."""
        ...


def chat_path_for(dialect: ChatDialect, model: str, api_version: str | None) -> str:
    """The chat path for ``model``: the dialect's ``chat_url_path(model, api_version)`` when it has one
    (Azure's deployment URL, with the ``api_version`` the user chose, None for the dialect's default),
    else its fixed ``chat_path``. The method is optional, so older dialects keep working."""
    url_path = getattr(dialect, "chat_url_path", None)
    return dialect.chat_path if url_path is None else str(url_path(model, api_version))


def embeddings_path_for(embeddings: EmbeddingsDialect, model: str, api_version: str | None) -> str:
    """Like :func:`chat_path_for`, for an embeddings format (its optional ``url_path``)."""
    url_path = getattr(embeddings, "url_path", None)
    return embeddings.path if url_path is None else str(url_path(model, api_version))


def status_failure_kind(dialect: ChatDialect, status: int) -> FailureKind | None:
    """The dialect's own failure kind for an HTTP error status (Anthropic: 529 is ``overloaded``),
    from its optional ``failure_kind_for_status(status)``; None: the generic 4xx/5xx kinds apply."""
    kind_for = getattr(dialect, "failure_kind_for_status", None)
    kind = None if kind_for is None else kind_for(status)
    return kind if isinstance(kind, FailureKind) else None


def tool_calls_of(parser: ChatStreamParser) -> tuple[ToolCall, ...]:
    """The tool calls a stream parser kept, from its optional ``tool_calls`` property (OpenAI Chat
    Completions has it); () for a dialect that does not keep them."""
    return _kept(parser, "tool_calls")


def thinking_blocks_of(parser: ChatStreamParser) -> tuple[ThinkingBlock, ...]:
    """The signed thinking blocks a stream parser kept, from its optional ``thinking_blocks`` property
    (Anthropic has it); () for a dialect that does not keep them."""
    return _kept(parser, "thinking_blocks")


def _kept(parser: ChatStreamParser, name: str) -> tuple[Any, ...]:
    """A parser's optional tuple property ``name``; () without one."""
    kept = getattr(parser, name, ())
    return kept if isinstance(kept, tuple) else ()
