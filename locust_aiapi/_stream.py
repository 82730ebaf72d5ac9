"""From timestamped body bytes to a measured chat stream (pure: no sockets, no clock).

The I/O loop calls ``feed(data, now, lag_s)`` with each read of the body as it arrives (and stops
reading when it returns False) and ``end(now)`` at the end of the body; when reading fails
or the test stops it calls ``interrupted()`` instead, so a failed or cancelled stream keeps
what it measured. Tests call them with synthetic bytes and times.

``now`` is the read's arrival time and ``lag_s`` its client lag when the kernel stamped it (None: a
user-space stamp). Every token event completed by one read gets that read's time.

Speed: most reads hold exactly one event (a server writes one chunk per token). When the decoder
recognises such a read (:meth:`~locust_aiapi._sse.SSEDecoder.lone_data`) and the parser has
``feed_data``, the event's data bytes go straight to the parser: no ``SSEEvent``, no decode, no
list of events; anything else takes the general path. ``benchmarks/chunk_cost.py`` (sans-IO, one
OpenAI chunk): 3.7 -> 2.7 µs and 37 -> 22 Python calls per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ._records import FailureKind, RequestRecord, StampSource, TokenSource, Usage
from ._sse import MAX_LINE_BYTES, SSEDecoder, SSEEvent
from .dialects.base import CONTENT, ChatStreamParser

__all__ = ["MAX_CHUNK_TIMES", "StreamRecorder", "apply_usage"]

MAX_CHUNK_TIMES: Final = 100_000
"""Token chunk times kept per request (800 kB). Beyond it the record says ``chunk_times_capped``;
TTFT, ITL, TPOT and tokens/s stay exact (they need only the first and last time and the count)."""

_TRUNCATED: Final = "stream ended without its end marker ([DONE], finish_reason or message_stop)"
_BODY_HEAD_BYTES: Final = 65536  # kept until the first event, to read an error object sent instead


class StreamRecorder:
    """Feeds SSE events to a dialect parser and stamps token-carrying chunks on ``record``."""

    __slots__ = (
        "_body_error",
        "_decoder",
        "_events",
        "_feed_data",
        "_head",
        "_kernel_reads",
        "_last_token_s",
        "_max_times",
        "_parser",
        "_reads",
        "_record",
        "_times",
    )

    def __init__(
        self,
        record: RequestRecord,
        parser: ChatStreamParser,
        *,
        body_error: Callable[[bytes], str | None] | None = None,
        max_chunk_times: int = MAX_CHUNK_TIMES,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        """``body_error`` is the dialect's ``parse_body_error``: the server's message when the
        body is an error object instead of a stream."""
        self._record = record
        self._parser = parser
        self._body_error = body_error
        self._decoder = SSEDecoder(max_line_bytes=max_line_bytes)
        self._times = record.token_chunk_times_s
        self._max_times = max(1, max_chunk_times)
        self._last_token_s: float | None = None
        self._events = 0
        self._reads = 0
        self._kernel_reads = 0
        self._head: bytearray | None = bytearray() if body_error is not None else None
        # the parser's bytes fast path for a read of one lone ``data:`` event, where it has one
        self._feed_data: Callable[[bytes, str], int | None] | None = getattr(parser, "feed_data", None)

    def feed(self, data: bytes, now: float, lag_s: float | None = None) -> bool:
        """Consume body bytes that arrived at ``now``; False: stop reading, the stream is over."""
        self._reads += 1
        if lag_s is not None:
            self._kernel_reads += 1
            lags = self._record.client_lags_s
            if len(lags) < self._max_times:
                lags.append(lag_s)
        decoder = self._decoder
        lone = decoder.lone_data(data) if self._feed_data is not None else None
        if lone is None:
            head = self._head
            if head is not None and len(head) < _BODY_HEAD_BYTES:
                head += data[: _BODY_HEAD_BYTES - len(head)]
            events = decoder.feed(data)
            if events:
                self._dispatch(events, now)
            return decoder.error is None
        # the common read: one lone data event, handed to the parser as bytes
        self._head = None  # it is a stream
        self._events += 1
        value, event_type = lone
        flags = self._feed_data(value, event_type)  # type: ignore[misc]
        if flags is None:  # not UTF-8 JSON: the parser judges the event itself
            flags = self._parser.feed(decoder.lone_event(value, event_type))
        if flags:
            self._token(flags, now)
        return True

    def end(self, now: float) -> None:
        """The body ended at ``now``: fill the record and judge the stream."""
        events = self._decoder.end()
        if events:
            self._dispatch(events, now)
        self._record.end_s = now
        self.interrupted()
        failure = self._failure()
        if failure is not None:
            self._record.fail(*failure)

    def interrupted(self) -> None:
        """Put what was measured so far on the record (times, tokens, model), without judging."""
        record = self._record
        parser = self._parser
        if self._times:
            record.first_token_s = self._times[0]
            record.last_token_s = self._last_token_s
        if self._reads and self._kernel_reads == self._reads:
            record.timestamps = StampSource.KERNEL
        record.finish_reason = parser.finish_reason
        record.served_model = parser.model
        apply_usage(record, parser.usage, counted=parser.token_chunks)

    def _dispatch(self, events: list[SSEEvent], now: float) -> None:
        if self._head is not None:
            self._head = None  # it is a stream
        self._events += len(events)
        parser = self._parser
        first_token = self._last_token_s is None
        token_events = 0
        for event in events:
            flags = parser.feed(event)
            if flags:
                token_events += 1
                self._token(flags, now)
        if token_events > 1:
            record = self._record
            record.shared_read_token_events += token_events
            record.first_token_shared_read |= first_token

    def _token(self, flags: int, now: float) -> None:
        """A token event arrived at ``now``."""
        self._last_token_s = now
        times = self._times
        if len(times) < self._max_times:
            times.append(now)
        else:
            self._record.chunk_times_capped = True
        if flags & CONTENT and self._record.first_content_s is None:
            self._record.first_content_s = now

    def _failure(self) -> tuple[FailureKind, str] | None:
        parser = self._parser
        if self._decoder.error is not None:
            return FailureKind.RESPONSE_TOO_LARGE, self._decoder.error
        if parser.error is not None:
            kind = FailureKind.OVERLOADED if parser.error.overloaded else FailureKind.STREAM_ERROR
            return kind, f"error in stream: {parser.error.message}"
        if parser.protocol_error is not None:
            return FailureKind.PROTOCOL_ERROR, parser.protocol_error
        if self._events == 0:
            return self._no_events_failure()
        if not parser.finished:
            return FailureKind.TRUNCATED, _TRUNCATED
        if parser.token_chunks == 0:
            return FailureKind.EMPTY_RESPONSE, "the stream carried no tokens"
        return None

    def _no_events_failure(self) -> tuple[FailureKind, str]:
        if self._head is not None and self._body_error is not None:
            message = self._body_error(bytes(self._head))
            if message is not None:
                return FailureKind.STREAM_ERROR, f"error instead of a stream: {message}"
        if self._decoder.comments:  # keep-alives, then the server hung up: an SSE stream cut short
            return FailureKind.TRUNCATED, "stream ended after keep-alive comments only, without any event"
        return FailureKind.PROTOCOL_ERROR, "the response holds no server-sent events"


def apply_usage(record: RequestRecord, usage: Usage | None, counted: int | None) -> None:
    """Tokens from the server's usage when it sent them, else the count of token chunks."""
    if usage is not None:
        record.prompt_tokens = usage.prompt_tokens
        record.cached_prompt_tokens = usage.cached_prompt_tokens
        record.cache_write_prompt_tokens = usage.cache_write_prompt_tokens
        record.cache_write_1h_prompt_tokens = usage.cache_write_1h_prompt_tokens
    if usage is not None and usage.completion_tokens is not None:
        record.output_tokens = usage.completion_tokens
        record.output_tokens_source = TokenSource.USAGE
    elif counted is not None:
        record.output_tokens = counted
        record.output_tokens_source = TokenSource.COUNTED
