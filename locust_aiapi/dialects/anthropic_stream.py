"""The streamed Anthropic Messages answer: typed SSE events -> tokens.

The order Anthropic sends (and its SDK insists on) is ``message_start`` (model, input usage),
then per content block ``content_block_start`` / ``content_block_delta``... / ``content_block_stop``,
then ``message_delta`` (``stop_reason``, cumulative output usage) and ``message_stop``; ``ping``
may come anywhere, ``error`` (e.g. ``overloaded_error``) ends a stream that failed after HTTP 200.

A token delta (:data:`~.base.TOKEN`) is a ``text_delta``, ``thinking_delta`` or
``input_json_delta`` (tool-call arguments), empty text included; only ``text_delta`` is
visible content (:data:`~.base.CONTENT`). ``signature_delta`` and ``citations_delta`` carry no
generated token. Each ``thinking`` block is kept with its signature, and each ``redacted_thinking``
block with its data (:attr:`AnthropicStream.thinking_blocks`): with thinking on, the API refuses tool
results whose calls come back without the thinking that preceded them, signed and unchanged.
Only ``message_stop`` ends the answer properly: without it the stream is truncated, even after a
``message_delta`` with a ``stop_reason``. Events after it are ignored; event types this parser does
not know are skipped (Anthropic adds new ones over time).

Tokens come from the usage events: the prompt is ``input_tokens`` plus both cache counts (from
``message_start``, updated by ``message_delta`` when it repeats them), the output is
``message_delta``'s cumulative ``output_tokens``.

The type is read from the JSON ``type`` field (what the SDK reads), falling back to the SSE
``event:`` name. Every count is range-checked; an invalid one is a protocol error.
"""

from __future__ import annotations

from typing import Any, Final

from .._errors import ProtocolError
from .._records import ThinkingBlock, ToolCall, Usage
from ._json import (
    MAX_COUNT,
    TextPieces,
    checked_count,
    describe,
    error_message_of,
    excerpt,
    short_text,
)
from ._thinking_blocks import THINKING_KINDS, StreamedThinking
from ._tool_calls import ToolCallParts, check_room_for_call, input_json
from ._typed_stream import TypedEventStream
from .base import CONTENT, TOKEN, StreamError

__all__ = [
    "OVERLOADED_ERROR_TYPE",
    "AnthropicStream",
    "anthropic_stream_error",
    "anthropic_usage",
    "usage_from",
]

OVERLOADED_ERROR_TYPE: Final = "overloaded_error"
"""The ``error.type`` Anthropic sends with HTTP 529 and inside streams when it sheds load."""

_TOKEN_AND_CONTENT: Final = TOKEN | CONTENT
_MESSAGE_CHARS: Final = 500
_EXCERPT_CHARS: Final = 200
_INPUT_FIELDS: Final = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
# ``usage.cache_creation``, the writes by cache lifetime (the 1-hour ones billed 2x input, the 5-minute
# ones 1.25x), kept with the input counts under these names, never summed into the prompt: a breakdown
# replaces an earlier one whole (a lifetime it leaves out had none)
_WRITE_TTLS: Final = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
_BY_TTL: Final = tuple(f"cache_creation.{ttl}" for ttl in _WRITE_TTLS)


class AnthropicStream(TypedEventStream):
    """Parses the events of one streamed Messages answer (a ``ChatStreamParser``)."""

    __slots__ = (
        "_calls",
        "_input",
        "_other_input",
        "_output_tokens",
        "_start_inputs",
        "_started",
        "_thinking",
    )

    def __init__(self) -> None:
        super().__init__()  # its end: message_stop
        self._started = False  # message_start was seen
        self._input: dict[str, int] = {}  # input usage fields, cumulative: the last value wins
        self._output_tokens: int | None = None
        # the tool_use blocks; ``_tool_args`` is the input of the open one (before any: of none)
        self._calls: list[ToolCallParts] = []
        self._start_inputs: list[str] = []  # each call's input as its block's start gave it ("": none)
        self._other_input = self._tool_args  # input deltas of other blocks (a server tool's search query)
        self._thinking = StreamedThinking()

    @property
    def text(self) -> str:
        """The visible text; for an answer of tool calls only, their input, one call per line (as
        :attr:`tool_calls` has it)."""
        if self._text or not self._calls:
            return super().text
        return "\n".join(call.arguments for call in self.tool_calls)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The ``tool_use`` blocks: id, name and input (the JSON text as streamed; ``{}`` when none came)."""
        return tuple(
            ToolCall(call.id or f"call_{index}", call.name or "", str(call.arguments) or start or "{}")
            for index, (call, start) in enumerate(zip(self._calls, self._start_inputs, strict=True))
        )

    @property
    def thinking_blocks(self) -> tuple[ThinkingBlock, ...]:
        """The ``thinking`` blocks (their text as streamed, their signature) and ``redacted_thinking``
        blocks (their data), in order; a block the stream left open is kept as far as it came."""
        return self._thinking.blocks(self._reasoning)

    @property
    def finished(self) -> bool:
        return self._ended

    @property
    def usage(self) -> Usage | None:
        return usage_from(self._input, self._output_tokens)

    def _feed_event(self, payload: dict[str, Any], kind: object) -> int:
        if kind == "content_block_delta":  # the common case first
            return self._feed_delta(payload["delta"])
        if kind == "message_start":
            self._feed_message_start(payload["message"])
        elif kind == "message_delta":
            self._feed_message_delta(payload)
        elif kind == "content_block_start":
            self._feed_block_start(payload.get("content_block"))
        elif kind == "content_block_stop":
            self._thinking.end(self._reasoning)
        elif kind == "message_stop":
            self._ended = True
        elif kind == "error":
            self._set_error(payload.get("error", payload))
        # block starts and stops and ping carry no generated text (a tool's name is not a token)
        return 0

    def _feed_delta(self, delta: dict[str, Any]) -> int:
        kind = delta["type"]
        if kind == "text_delta":
            text = delta["text"]
            flags = self._append(self._text, text, "text")
            flags = _TOKEN_AND_CONTENT if text else flags
        elif kind == "thinking_delta":
            flags = self._append(self._reasoning, delta["thinking"], "thinking")
        elif kind == "input_json_delta":
            flags = self._append(self._tool_args, delta["partial_json"], "partial_json")
        elif kind == "signature_delta":  # no generated token: the signature of the open thinking block
            self._thinking.sign(delta.get("signature"))
            return 0
        else:  # citations_delta and future kinds: no generated token
            return 0
        self._counted()
        return flags

    @staticmethod
    def _append(pieces: TextPieces, value: object, field: str) -> int:
        if type(value) is not str:
            raise ProtocolError(f"a content_block_delta's {field} is not a string")
        if value:
            pieces.append(value)
        return TOKEN

    def _feed_block_start(self, block: object) -> None:
        """A ``tool_use`` block opens a call: the input deltas that follow are its input (when none
        come, the input the start gave). Those of any other block (a ``server_tool_use``, run by the
        API itself) are nobody's call."""
        self._tool_args.compact()  # the previous block's pieces, joined (what ``_counted`` does per block)
        self._thinking.end(self._reasoning)  # a start without the previous block's stop ends it too
        if type(block) is not dict or block.get("type") != "tool_use":
            self._tool_args = self._other_input
            if type(block) is dict and block.get("type") in THINKING_KINDS:
                self._thinking.start(block, self._reasoning, len(self._calls))
            return
        check_room_for_call(len(self._calls))
        call = ToolCallParts()
        call.identify(block.get("id"), block.get("name"))
        self._calls.append(call)
        start = block.get("input")
        self._start_inputs.append(input_json(start) if start else "")
        self._tool_args = call.arguments

    def _feed_message_start(self, message: dict[str, Any]) -> None:
        if self._started:
            raise ProtocolError("the stream has a second message_start")
        self._started = True
        self.model = short_text(message.get("model"))
        self._feed_usage(message.get("usage"), with_output=False)

    def _feed_message_delta(self, payload: dict[str, Any]) -> None:
        stop_reason = payload.get("delta", {}).get("stop_reason")
        if stop_reason is not None:
            text = short_text(stop_reason)
            if text is None:
                raise ProtocolError("stop_reason is not a string")
            self.finish_reason = text
        self._feed_usage(payload.get("usage"))

    def _feed_usage(self, usage: object, with_output: bool = True) -> None:
        """``with_output`` False: ``message_start``'s ``output_tokens`` (1 or so, before anything
        was generated) is a placeholder, not a count; a stream cut before ``message_delta`` counts
        its token deltas instead."""
        if usage is None:
            return
        if type(usage) is not dict:
            raise ProtocolError("usage is not a JSON object")
        input_counts, output = anthropic_usage(usage)
        self._input.update(input_counts)
        if output is not None and with_output:
            self._output_tokens = output

    def _stream_error(self, error: object) -> StreamError:
        return anthropic_stream_error(error)


def anthropic_usage(usage: dict[str, Any]) -> tuple[dict[str, int], int | None]:
    """The input counts present in an Anthropic ``usage`` object, and its ``output_tokens``.

    Anthropic's ``input_tokens`` excludes cached input; the prompt is the sum of all three. The
    ``cache_creation`` breakdown comes under ``_BY_TTL``'s names (see :func:`usage_from`).
    """
    counts = {}
    for name in _INPUT_FIELDS:
        count = checked_count(usage.get(name), f"usage.{name}")
        if count is not None:
            counts[name] = count
    breakdown = usage.get("cache_creation")
    if breakdown is not None:
        if type(breakdown) is not dict:
            raise ProtocolError("usage.cache_creation is not a JSON object")
        for ttl, name in zip(_WRITE_TTLS, _BY_TTL, strict=True):
            counts[name] = checked_count(breakdown.get(ttl), f"usage.cache_creation.{ttl}") or 0
    return counts, checked_count(usage.get("output_tokens"), "usage.output_tokens")


def usage_from(input_counts: dict[str, int], output_tokens: int | None) -> Usage | None:
    """Our :class:`Usage` from Anthropic's counts: the prompt is the input fields summed, the cached
    prompt is ``cache_read_input_tokens``, the cache writes (billed above the input price) are
    ``cache_creation_input_tokens``, of them ``cache_creation.ephemeral_1h_input_tokens`` for an hour.
    Without ``cache_creation_input_tokens`` (documented as the breakdown's sum) the breakdown's sum
    stands for it."""
    if not input_counts and output_tokens is None:
        return None
    writes = input_counts.get("cache_creation_input_tokens")
    five_minutes, one_hour = (input_counts.get(name) for name in _BY_TTL)
    if writes is None and one_hour is not None:
        writes = min((five_minutes or 0) + one_hour, MAX_COUNT)
    prompt = None
    if input_counts:
        read = input_counts.get("cache_read_input_tokens", 0)
        prompt = input_counts.get("input_tokens", 0) + read + (writes or 0)
    total = None if prompt is None or output_tokens is None else prompt + output_tokens
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output_tokens,
        total_tokens=total,
        cached_prompt_tokens=input_counts.get("cache_read_input_tokens"),
        cache_write_prompt_tokens=writes,
        # a breakdown that says more than the total it breaks down is capped at it
        cache_write_1h_prompt_tokens=None if one_hour is None else min(one_hour, writes or 0),
    )


def anthropic_stream_error(error: object) -> StreamError:
    """A :class:`StreamError` from Anthropic's ``{"type": ..., "message": ...}`` error object."""
    if isinstance(error, dict):
        error_type = short_text(error.get("type"))
        message = error_message_of({"error": error}) or describe(error, _EXCERPT_CHARS)
        return StreamError(
            message=excerpt(message, _MESSAGE_CHARS),
            type=error_type,
            code=None,
            overloaded=error_type == OVERLOADED_ERROR_TYPE,
        )
    return StreamError(message=describe(error, _MESSAGE_CHARS), type=None, code=None)
