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

from .._errors import ProtocolError
from .._records import ToolCall, Usage
from ._json import TextPieces, cached_count, checked_count, short_text
from ._tool_calls import check_room_for_call, function_call_of
from ._typed_stream import TypedEventStream
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


class ResponsesStream(TypedEventStream):
    """Parses the events of one streamed Responses answer (a ``ChatStreamParser``)."""

    __slots__ = ("_calls", "usage")

    def __init__(self) -> None:
        super().__init__()  # its end: a terminal event (completed, incomplete, failed) or an error
        self.usage: Usage | None = None
        self._calls: list[ToolCall] = []  # from each function_call's response.output_item.done

    @property
    def text(self) -> str:
        """The visible text; for an answer of function calls only, their arguments, one call per line."""
        if self._text or not self._calls:
            return super().text
        return "\n".join(call.arguments for call in self._calls)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(self._calls)

    @property
    def finished(self) -> bool:
        return self._ended and self.error is None

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
        elif kind == "response.output_item.done":
            self._feed_item_done(payload.get("item"))
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
        self._counted()
        return delta

    def _feed_item_done(self, item: object) -> None:
        """A finished output item: a ``function_call`` is a call (whole: id, name, arguments)."""
        if type(item) is not dict or item.get("type") != "function_call":
            return
        check_room_for_call(len(self._calls))
        self._calls.append(function_call_of(item, len(self._calls)))

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

    def _stream_error(self, error: object) -> StreamError:
        return stream_error_of(error)


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
