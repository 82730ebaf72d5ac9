"""The streamed OpenAI Responses answer: ``response.*`` events -> tokens.

The order OpenAI sends (and its SDK checks) is ``response.created``, ``response.in_progress``, then
per output item ``response.output_item.added``, its parts and deltas, ``response.output_item.done``,
and one terminal event: ``response.completed``, ``response.incomplete`` (e.g. ``max_output_tokens``
reached: an answer cut at its limit, like ``finish_reason: "length"``) or ``response.failed``; an
``error`` event can end any stream.

A token delta (:data:`~.base.TOKEN`) is ``response.output_text.delta`` or ``response.refusal.delta``
(both visible content, :data:`~.base.CONTENT`, when not empty), a reasoning text or reasoning
summary delta, or a function-call / custom-tool input delta. ``response.created`` and every
``*.added`` / ``*.done`` event carry no generated token. Only ``response.completed`` and
``response.incomplete`` end an answer properly; events after the terminal one are ignored, and
event types this parser does not know are skipped.

Tokens come from the terminal event's ``response.usage``: ``input_tokens`` (cached ones included,
as OpenAI counts them; the cached ones are ``input_tokens_details.cached_tokens``) and
``output_tokens`` (reasoning included).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from .._errors import ProtocolError
from .._records import Usage
from .._sse import SSEEvent
from ._json import PIECES_PER_BLOCK, TextPieces, cached_count, checked_count, short_text
from .base import CONTENT, TOKEN, StreamError
from .openai_stream import stream_error_of

__all__ = ["ResponsesStream", "responses_usage"]

_TOKEN_AND_CONTENT: Final = TOKEN | CONTENT
_VISIBLE: Final = frozenset({"response.output_text.delta", "response.refusal.delta"})
_REASONING: Final = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_TOOL_INPUT: Final = frozenset(
    {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
)
_FINISHED: Final = frozenset({"response.completed", "response.incomplete"})
_LIFECYCLE: Final = frozenset({"response.created", "response.in_progress", "response.queued"})


class ResponsesStream:
    """Parses the events of one streamed Responses answer (a ``ChatStreamParser``)."""

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
        self._ended = False  # a terminal event was seen: later events are ignored
        self.error: StreamError | None = None
        self.protocol_error: str | None = None
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.token_chunks = 0
        self._text = TextPieces()
        self._reasoning = TextPieces()
        self._tool_args = TextPieces()

    @property
    def finished(self) -> bool:
        return self._ended and self.error is None

    @property
    def text(self) -> str:
        """The visible text; for a tool-call-only answer, the calls' arguments."""
        return str(self._text) if self._text else str(self._tool_args)

    @property
    def reasoning(self) -> str:
        return str(self._reasoning)

    def feed(self, event: SSEEvent) -> int:
        if self._ended:
            return 0
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return self._feed_unparseable(event)
        if type(payload) is not dict:
            self._set_protocol_error("a stream event is not a JSON object")
            return 0
        try:
            return self._feed_event(payload, payload.get("type") or event.event)
        except ProtocolError as exc:
            self._set_protocol_error(str(exc))
        except (AttributeError, TypeError, LookupError):
            self._set_protocol_error("a stream event has an unexpected structure")
        return 0

    def _feed_unparseable(self, event: SSEEvent) -> int:
        data = event.data.strip()
        if event.event == "error":
            self._set_error(data or "error event without data")
        elif data:
            self._set_protocol_error("a stream event is not valid JSON")
        return 0

    def _feed_event(self, payload: dict[str, Any], kind: object) -> int:
        if kind in _VISIBLE:  # the common case first
            text = self._append(self._text, payload["delta"])
            return _TOKEN_AND_CONTENT if text else TOKEN
        if kind in _REASONING:
            self._append(self._reasoning, payload["delta"])
            return TOKEN
        if kind in _TOOL_INPUT:
            self._append(self._tool_args, payload["delta"])
            return TOKEN
        if kind in _LIFECYCLE:
            if self.model is None:
                self.model = short_text(payload["response"].get("model"))
        elif kind in _FINISHED or kind == "response.failed":
            self._feed_terminal(payload["response"], kind)
        elif kind == "error":
            self._ended = True
            self._set_error(payload.get("error") or payload)
        return 0

    def _append(self, pieces: TextPieces, delta: object) -> str:
        if type(delta) is not str:
            raise ProtocolError("a delta event's delta is not a string")
        if delta:
            pieces.append(delta)
        self.token_chunks += 1
        if not self.token_chunks % PIECES_PER_BLOCK:
            self._text.compact()
            self._reasoning.compact()
            self._tool_args.compact()
        return delta

    def _feed_terminal(self, response: dict[str, Any], kind: object) -> None:
        self._ended = True
        if self.model is None:
            self.model = short_text(response.get("model"))
        self.usage = responses_usage(response.get("usage"))
        if kind == "response.failed":
            self._set_error(response.get("error") or "response.failed without an error")
        elif kind == "response.incomplete":
            details = response.get("incomplete_details") or {}
            self.finish_reason = short_text(details.get("reason")) or "incomplete"
        else:
            self.finish_reason = "completed"

    def _set_error(self, error: object) -> None:
        if self.error is None:
            self.error = stream_error_of(error)

    def _set_protocol_error(self, message: str) -> None:
        if self.protocol_error is None:
            self.protocol_error = message


def responses_usage(value: object) -> Usage | None:
    """Our :class:`Usage` from a Responses ``usage`` object (None when null); invalid counts raise."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError("usage is not a JSON object")
    return Usage(
        prompt_tokens=checked_count(value.get("input_tokens"), "usage.input_tokens"),
        completion_tokens=checked_count(value.get("output_tokens"), "usage.output_tokens"),
        total_tokens=checked_count(value.get("total_tokens"), "usage.total_tokens"),
        cached_prompt_tokens=cached_count(value.get("input_tokens_details"), "usage.input_tokens_details"),
    )
