"""The OpenAI Chat Completions dialect (embeddings: :mod:`.openai_embeddings`, re-exported here).

Chat Completions is also what Azure OpenAI, vLLM, SGLang, DeepSeek and OpenRouter speak, so
this parser accepts their spellings: ``reasoning_content`` (DeepSeek, vLLM) and ``reasoning``
(OpenRouter, newer vLLM) for reasoning text, Azure's content-filter chunks with empty
``choices``, and errors sent as ``{"error": ...}`` or ``{"object": "error", ...}`` events.

Only choice index 0 is read: requests with ``n > 1`` are not supported (the other choices
are ignored, and a token time would be ambiguous across choices anyway).

Failure messages are deliberately stable (no excerpts of varying data), because Locust
groups its failure table by message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .._errors import ProtocolError
from .._records import Usage
from .._sse import SSEEvent
from .base import (
    CONTENT,
    TOKEN,
    ChatCompletion,
    StreamError,
    encode_json,
    error_message_of,
    excerpt,
    load_json_object,
    usage_of,
)
from .openai_embeddings import build_embeddings_request, parse_embeddings_response

__all__ = [
    "OPENAI",
    "OpenAIChatDialect",
    "OpenAIChatStream",
    "build_embeddings_request",
    "parse_embeddings_response",
]

_DONE = "[DONE]"
_TOKEN_AND_CONTENT = TOKEN | CONTENT
_EXCERPT_CHARS = 200
_MESSAGE_CHARS = 500


class OpenAIChatStream:
    """Parses the ``chat.completion.chunk`` events of one streamed answer (a ``ChatStreamParser``)."""

    __slots__ = (
        "_reasoning",
        "_text",
        "_tool_args",
        "done",
        "error",
        "finish_reason",
        "protocol_error",
        "token_chunks",
        "usage",
    )

    def __init__(self) -> None:
        self.done = False
        self.error: StreamError | None = None
        self.protocol_error: str | None = None
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.token_chunks = 0
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tool_args: dict[int, list[str]] = {}  # argument pieces by tool-call index

    @property
    def finished(self) -> bool:
        return self.done or self.finish_reason is not None

    @property
    def text(self) -> str:
        """The visible content; for a tool-call-only answer, the calls' arguments, one per line."""
        if self._text or not self._tool_args:
            return "".join(self._text)
        return "\n".join("".join(pieces) for _, pieces in sorted(self._tool_args.items()))

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def feed(self, event: SSEEvent) -> int:
        data = event.data
        if data == _DONE:
            self.done = True
            return 0
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._feed_unparseable(event)
        if type(chunk) is not dict:
            self._set_protocol_error("a stream event is not a JSON object")
            return 0
        try:
            return self._feed_chunk(chunk, event.event)
        except (AttributeError, TypeError, LookupError):  # a value of an unexpected JSON type
            self._set_protocol_error("a stream event has an unexpected structure")
            return 0

    def _feed_unparseable(self, event: SSEEvent) -> int:
        data = event.data.strip()
        if data == _DONE:
            self.done = True
        elif event.event == "error":
            self._set_error(data or "error event without data")
        elif data:  # whitespace-only data is a keep-alive, not an error
            self._set_protocol_error("a stream event is not valid JSON")
        return 0

    def _feed_chunk(self, chunk: dict[str, Any], event_type: str) -> int:
        error = chunk.get("error")
        if error is not None:
            self._set_error(error)
            return 0
        usage = chunk.get("usage")
        if usage:
            self.usage = usage_of(usage)
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            if choice.get("index", 0) != 0:
                choice = _choice_zero(choices)
            return 0 if choice is None else self._feed_choice(choice)
        if chunk.get("object") == "error" or event_type == "error":
            self._set_error(chunk)
        return 0

    def _feed_choice(self, choice: dict[str, Any]) -> int:
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            self.finish_reason = str(finish_reason)
        delta = choice.get("delta")
        if not delta:
            return 0
        flags = 0
        content = delta.get("content") or delta.get("refusal")
        if content and type(content) is str:
            self._text.append(content)
            flags = _TOKEN_AND_CONTENT
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and type(reasoning) is str:
            self._reasoning.append(reasoning)
            flags |= TOKEN
        if delta.get("tool_calls") or delta.get("function_call"):
            flags |= self._feed_tool_calls(delta)
        if flags:
            self.token_chunks += 1
        return flags

    def _feed_tool_calls(self, delta: dict[str, Any]) -> int:
        found = False
        for call in delta.get("tool_calls") or ():
            index = call.get("index", 0)
            found |= self._add_tool_text(index if type(index) is int else 0, call.get("function") or {})
        legacy = delta.get("function_call")
        if legacy:
            found |= self._add_tool_text(0, legacy)
        return TOKEN if found else 0

    def _add_tool_text(self, index: int, function: dict[str, Any]) -> bool:
        arguments = function.get("arguments")
        if arguments and type(arguments) is str:
            self._tool_args.setdefault(index, []).append(arguments)
            return True
        return bool(function.get("name"))

    def _set_error(self, error: object) -> None:
        if self.error is None:
            self.error = _stream_error(error)

    def _set_protocol_error(self, message: str) -> None:
        if self.protocol_error is None:
            self.protocol_error = message


class OpenAIChatDialect:
    """OpenAI Chat Completions (a ``ChatDialect``); configurable for compatible servers.

    ``max_tokens_field="max_completion_tokens"`` suits OpenAI's reasoning models;
    ``include_usage=False`` omits ``stream_options`` for servers that reject it.
    """

    def __init__(
        self,
        *,
        name: str = "openai",
        chat_path: str = "/v1/chat/completions",
        include_usage: bool = True,
        max_tokens_field: str = "max_tokens",
    ) -> None:
        self.name = name
        self.chat_path = chat_path
        self.include_usage = include_usage
        self.max_tokens_field = max_tokens_field

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
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
        if max_tokens is not None:
            body[self.max_tokens_field] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if stream and self.include_usage:
            body["stream_options"] = {"include_usage": True}
        body.update(extra_body)
        return encode_json(body)

    def stream_parser(self) -> OpenAIChatStream:
        return OpenAIChatStream()

    def parse_chat_response(self, body: bytes) -> ChatCompletion:
        completion = load_json_object(body, "chat completion")
        choices = completion.get("choices")
        if not choices or not isinstance(choices, list):
            if completion.get("error") is not None:
                raise ProtocolError(f"error instead of a chat completion: {error_message_of(completion)}")
            raise ProtocolError("chat completion has no choices")
        choice = _choice_zero(choices)
        if choice is None or not isinstance(choice.get("message"), dict):
            raise ProtocolError("chat completion has no message in choice 0")
        try:
            return _completion_of(choice, completion.get("usage"))
        except (AttributeError, TypeError, LookupError):  # a value of an unexpected JSON type
            raise ProtocolError("chat completion has an unexpected structure") from None

    def parse_error_message(self, body: bytes) -> str:
        try:
            message = error_message_of(orjson.loads(body))
        except orjson.JSONDecodeError:
            message = None
        if message:
            return excerpt(message, _MESSAGE_CHARS)
        return excerpt(body.decode("utf-8", "replace"), _EXCERPT_CHARS) or "(empty body)"


OPENAI = OpenAIChatDialect()


def _choice_zero(choices: list[Any]) -> dict[str, Any] | None:
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _completion_of(choice: dict[str, Any], usage: object) -> ChatCompletion:
    message = choice["message"]
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    finish_reason = choice.get("finish_reason")
    return ChatCompletion(
        text=_message_text(message),
        reasoning=reasoning if isinstance(reasoning, str) else "",
        usage=usage_of(usage),
        finish_reason=None if finish_reason is None else str(finish_reason),
    )


def _message_text(message: dict[str, Any]) -> str:
    """The message content; else its refusal; else its tool calls' arguments, one per line."""
    for key in ("content", "refusal"):
        value = message.get(key)
        if value and isinstance(value, str):
            return value
    calls = [call.get("function") for call in message.get("tool_calls") or () if isinstance(call, dict)]
    calls.append(message.get("function_call"))
    arguments = [call.get("arguments") for call in calls if isinstance(call, dict)]
    return "\n".join(argument for argument in arguments if isinstance(argument, str))


def _stream_error(error: object) -> StreamError:
    if isinstance(error, dict):
        kind, code = error.get("type"), error.get("code")
        return StreamError(
            message=error_message_of(error) or excerpt(orjson.dumps(error).decode(), _EXCERPT_CHARS),
            type=None if kind is None else str(kind),
            code=None if code is None else str(code),
        )
    return StreamError(message=excerpt(str(error), _MESSAGE_CHARS), type=None, code=None)
