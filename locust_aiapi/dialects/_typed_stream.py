"""The half that streams of typed JSON events share (Anthropic Messages, OpenAI Responses).

Each SSE event's data is one JSON object whose ``type`` field (else the SSE ``event:`` name) says
what it is. This base decodes the event, keeps the visible text, the reasoning and the tool-call
input in bounded pieces, and turns malformed input into a protocol error; a dialect's subclass says
what each type means (:meth:`TypedEventStream._feed_event`) and how its errors read.
"""

from __future__ import annotations

from typing import Any

import orjson

from .._errors import ProtocolError
from .._sse import SSEEvent
from ._json import PIECES_PER_BLOCK, TextPieces
from .base import StreamError

__all__ = ["TypedEventStream"]


class TypedEventStream:
    """Decoding, text pieces and error bookkeeping of a ``ChatStreamParser`` over typed events."""

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
    )

    def __init__(self) -> None:
        self._ended = False  # the answer's end event was seen: later events are ignored
        self.error: StreamError | None = None
        self.protocol_error: str | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.token_chunks = 0
        self._text = TextPieces()
        self._reasoning = TextPieces()
        self._tool_args = TextPieces()

    @property
    def text(self) -> str:
        """The visible text; for an answer of tool calls only, their input (arguments)."""
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
        return self._feed_payload(payload, event.event)

    def feed_data(self, data: bytes, event_type: str) -> int | None:
        """:meth:`feed` of an event whose data is these bytes, without the event object or a decode
        (orjson reads UTF-8); None when they are not valid UTF-8 JSON: then feed the event."""
        if self._ended:
            return 0
        try:
            payload = orjson.loads(data)  # refuses invalid UTF-8, which the event's text would have replaced
        except orjson.JSONDecodeError:
            return None
        return self._feed_payload(payload, event_type)

    def _feed_payload(self, payload: object, event_type: str) -> int:
        if type(payload) is not dict:
            self._set_protocol_error("a stream event is not a JSON object")
            return 0
        try:
            return self._feed_event(payload, payload.get("type") or event_type)
        except ProtocolError as exc:
            self._set_protocol_error(str(exc))
        except (AttributeError, TypeError, LookupError):
            self._set_protocol_error("a stream event has an unexpected structure")
        return 0

    def _feed_event(self, payload: dict[str, Any], kind: object) -> int:
        """One decoded event: the token flags it carries (0 for none). Raises ProtocolError."""
        raise NotImplementedError

    def _stream_error(self, error: object) -> StreamError:
        """The dialect's reading of an error object sent inside the stream."""
        raise NotImplementedError

    def _feed_unparseable(self, event: SSEEvent) -> int:
        data = event.data.strip()
        if event.event == "error":
            self._set_error(data or "error event without data")
        elif data:  # whitespace-only data is a keep-alive, not an error
            self._set_protocol_error("a stream event is not valid JSON")
        return 0

    def _counted(self) -> None:
        """One more token event: the text pieces are joined every block (bounded memory per answer)."""
        self.token_chunks += 1
        if not self.token_chunks % PIECES_PER_BLOCK:
            self._text.compact()
            self._reasoning.compact()
            self._tool_args.compact()

    def _set_error(self, error: object) -> None:
        if self.error is None:
            self.error = self._stream_error(error)

    def _set_protocol_error(self, message: str) -> None:
        if self.protocol_error is None:
            self.protocol_error = message
