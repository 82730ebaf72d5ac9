"""The streamed OpenAI Chat Completions answer: ``chat.completion.chunk`` events -> tokens.

Chat Completions is also what Azure OpenAI, vLLM, SGLang, llama.cpp, DeepSeek and OpenRouter
speak, so this parser accepts their spellings: ``reasoning_content`` (DeepSeek, vLLM) and
``reasoning`` (OpenRouter, newer vLLM) for reasoning text, Azure's content-filter chunks with
empty ``choices``, and errors sent as ``{"error": ...}`` or ``{"object": "error", ...}`` events.

A token delta (:data:`~.base.TOKEN`) is a content, refusal, reasoning or tool-call delta,
empty text included, except in the role chunk: llama-cpp-python sends no ``usage`` and one
chunk per token, many of them ``"content": ""`` (a token that is not yet a whole character),
so counting only non-empty chunks undercounts by ~40 %. A role chunk with empty text is not a
token; with text, it is.

Only choice index 0 is read (``n > 1`` is not supported), looking at most at
``MAX_CHOICES_SCANNED`` entries of ``choices``. Events after ``[DONE]`` are ignored. Every
number is range-checked; an invalid one is a protocol error of the request.

Failure messages are deliberately stable (no excerpts of varying data), because Locust
groups its failure table by message.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from .._errors import ProtocolError
from .._records import ToolCall, Usage
from .._sse import SSEEvent
from ._json import (
    MAX_COUNT,
    PIECES_PER_BLOCK,
    TextPieces,
    checked_count,
    describe,
    error_message_of,
    excerpt,
    short_text,
    usage_of,
)
from ._tool_calls import MAX_TOOL_CALLS, ToolCallParts, check_room_for_call
from .base import CONTENT, TOKEN, StreamError

__all__ = ["MAX_CHOICES_SCANNED", "MAX_TOOL_CALLS", "OpenAIChatStream", "choice_zero", "stream_error_of"]

MAX_CHOICES_SCANNED: Final = 16
"""Entries of ``choices`` looked at for choice 0; a server sending 200,000 costs no more."""

_DONE: Final = "[DONE]"
_DONE_BYTES: Final = b"[DONE]"
_TOKEN_AND_CONTENT: Final = TOKEN | CONTENT
_EMPTY_DELTA: Final = 4  # internal: a token delta whose text is empty
_EXCERPT_CHARS: Final = 200
_MESSAGE_CHARS: Final = 500


class OpenAIChatStream:
    """Parses the ``chat.completion.chunk`` events of one streamed answer (a ``ChatStreamParser``)."""

    __slots__ = (
        "_ended",
        "_reasoning",
        "_text",
        "_tool_args",
        "error",
        "finish_reason",
        "model",
        "protocol_error",
        "token_chunks",
        "usage",
    )

    def __init__(self) -> None:
        self._ended = False  # [DONE] was seen: later events are ignored
        self.error: StreamError | None = None
        self.protocol_error: str | None = None
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.token_chunks = 0
        self._text = TextPieces()
        self._reasoning = TextPieces()
        self._tool_args: dict[int, ToolCallParts] = {}  # by tool-call index

    @property
    def finished(self) -> bool:
        return self._ended or self.finish_reason is not None

    @property
    def text(self) -> str:
        """The visible content; for a tool-call-only answer, the calls' arguments, one per line."""
        if self._text or not self._tool_args:
            return str(self._text)
        return "\n".join(str(parts.arguments) for _, parts in sorted(self._tool_args.items()))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls received so far, by index (an id the server left out becomes ``call_<index>``)."""
        return tuple(parts.call(index) for index, parts in sorted(self._tool_args.items()))

    @property
    def reasoning(self) -> str:
        return str(self._reasoning)

    def feed(self, event: SSEEvent) -> int:
        if self._ended:
            return 0
        data = event.data
        if data == _DONE:
            self._ended = True
            return 0
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:  # also: nested deeper than orjson's 1,024 levels
            return self._feed_unparseable(event)
        return self._feed_object(chunk, event.event)

    def feed_data(self, data: bytes, event_type: str) -> int | None:
        """:meth:`feed` of an event whose data is these bytes, without the event object or a decode
        (orjson reads UTF-8); None when they are not valid UTF-8 JSON: then feed the event."""
        if self._ended:
            return 0
        if data == _DONE_BYTES:
            self._ended = True
            return 0
        try:
            chunk = orjson.loads(data)  # refuses invalid UTF-8, which the event's text would have replaced
        except orjson.JSONDecodeError:
            return None
        return self._feed_object(chunk, event_type)

    def _feed_unparseable(self, event: SSEEvent) -> int:
        data = event.data.strip()
        if data == _DONE:
            self._ended = True
        elif event.event == "error":
            self._set_error(data or "error event without data")
        elif data:  # whitespace-only data is a keep-alive, not an error
            self._set_protocol_error("a stream event is not valid JSON")
        return 0

    def _feed_object(self, chunk: object, event_type: str) -> int:
        if type(chunk) is not dict:
            self._set_protocol_error("a stream event is not a JSON object")
            return 0
        try:
            error = chunk.get("error")
            if error is not None:
                self._set_error(error)
                return 0
            if self.model is None:
                self.model = short_text(chunk.get("model"))
            usage = chunk.get("usage")
            if usage:
                self.usage = usage_of(usage)
            choices = chunk.get("choices")
            if choices:
                choice = choices[0]
                index = choice.get("index", 0)
                if type(index) is not int or index:  # the uncommon case, checked in full
                    choice = choice_zero(choices)
                return 0 if choice is None else self._feed_choice(choice)
            if chunk.get("object") == "error" or event_type == "error":
                self._set_error(chunk)
        except ProtocolError as exc:  # a number out of range, too many tool calls
            self._set_protocol_error(str(exc))
        except (AttributeError, TypeError, LookupError):  # a value of an unexpected JSON type
            self._set_protocol_error("a stream event has an unexpected structure")
        return 0

    def _feed_choice(self, choice: dict[str, Any]) -> int:
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            self.finish_reason = _finish_reason_of(finish_reason)
        delta = choice.get("delta")
        if not delta:
            return 0
        content = delta.get("content")
        if content and type(content) is str and len(delta) == 1:  # nothing but text: the common case
            self._text.append(content)
            self.token_chunks += 1
            if not self.token_chunks % PIECES_PER_BLOCK:
                self._compact()
            return _TOKEN_AND_CONTENT
        return self._feed_delta(delta, content)

    def _feed_delta(self, delta: dict[str, Any], content: object) -> int:
        if content and type(content) is str:
            self._text.append(content)
            flags = _TOKEN_AND_CONTENT
        else:
            flags = self._feed_refusal(delta, content)
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            reasoning = delta.get("reasoning")
        if type(reasoning) is str:
            flags |= self._feed_reasoning(reasoning)
        if delta.get("tool_calls") or delta.get("function_call"):
            flags |= self._feed_tool_calls(delta)
        if flags & TOKEN:
            flags &= _TOKEN_AND_CONTENT
        elif not flags or "role" in delta:  # empty text is a token, except in the role chunk
            return 0
        else:
            flags = TOKEN
        self.token_chunks += 1
        if not self.token_chunks % PIECES_PER_BLOCK:
            self._compact()
        return flags

    def _compact(self) -> None:
        self._text.compact()
        self._reasoning.compact()
        for parts in self._tool_args.values():
            parts.arguments.compact()

    def _feed_refusal(self, delta: dict[str, Any], content: object) -> int:
        refusal = delta.get("refusal")
        if refusal and type(refusal) is str:
            self._text.append(refusal)
            return _TOKEN_AND_CONTENT
        return _EMPTY_DELTA if type(content) is str or type(refusal) is str else 0

    def _feed_reasoning(self, reasoning: str) -> int:
        if not reasoning:
            return _EMPTY_DELTA
        self._reasoning.append(reasoning)
        return TOKEN

    def _feed_tool_calls(self, delta: dict[str, Any]) -> int:
        found = 0
        calls = delta.get("tool_calls") or []
        if type(calls) is not list:
            raise TypeError("tool_calls is not a list")
        for call in calls[:MAX_TOOL_CALLS]:
            index = checked_count(call.get("index"), "tool call index") or 0
            found |= self._add_tool_text(index, call.get("function") or {}, call.get("id"))
        legacy = delta.get("function_call")
        if legacy:
            found |= self._add_tool_text(0, legacy, None)
        return found

    def _add_tool_text(self, index: int, function: dict[str, Any], call_id: object) -> int:
        arguments = function.get("arguments")
        name = function.get("name")
        named = TOKEN if name else 0
        if not named and (type(arguments) is not str or not arguments):
            return named if type(arguments) is not str else _EMPTY_DELTA
        parts = self._tool_args.get(index)
        if parts is None:
            check_room_for_call(len(self._tool_args))
            parts = self._tool_args[index] = ToolCallParts()
        parts.identify(call_id, name)
        if type(arguments) is not str or not arguments:
            return named
        parts.arguments.append(arguments)
        return TOKEN

    def _set_error(self, error: object) -> None:
        if self.error is None:
            self.error = stream_error_of(error)

    def _set_protocol_error(self, message: str) -> None:
        if self.protocol_error is None:
            self.protocol_error = message


def choice_zero(choices: object) -> dict[str, Any] | None:
    """Choice index 0 among the first ``MAX_CHOICES_SCANNED`` entries (a missing index is 0)."""
    if type(choices) is not list:
        raise TypeError("choices is not a list")
    for choice in choices[:MAX_CHOICES_SCANNED]:
        if type(choice) is not dict:
            raise TypeError("a choice is not an object")
        index = choice.get("index")
        if index is None or (index == 0 and type(index) is int):
            return choice
        checked_count(index, "choice index")
    return None


def _finish_reason_of(value: object) -> str:
    text = short_text(value)
    if text is None:
        raise ProtocolError("finish_reason is not a string")
    return text


def _scalar_text(value: object) -> str | None:
    if isinstance(value, str):
        return short_text(value)
    if isinstance(value, int | float):  # codes are sometimes numbers (vLLM sends 400)
        return str(value) if not isinstance(value, int) or abs(value) <= MAX_COUNT else None
    return None


def stream_error_of(error: object) -> StreamError:
    """A :class:`StreamError` from an error object (or text), bounded in size and depth."""
    if isinstance(error, dict):
        return StreamError(
            message=excerpt(error_message_of(error) or describe(error, _EXCERPT_CHARS), _MESSAGE_CHARS),
            type=_scalar_text(error.get("type")),
            code=_scalar_text(error.get("code")),
        )
    return StreamError(message=describe(error, _MESSAGE_CHARS), type=None, code=None)
