"""From timestamped body bytes to a measured chat stream (pure: no sockets, no clock).

The I/O loop calls ``feed(data, now)`` with each piece of the body as it arrives and
``end(now)`` at the end of the body; tests call them with synthetic bytes and times.
"""

from __future__ import annotations

from ._records import FailureKind, RequestRecord, TokenSource, Usage
from ._sse import SSEDecoder, SSEEvent
from .dialects.base import CONTENT, ChatStreamParser

__all__ = ["StreamRecorder", "apply_usage"]


class StreamRecorder:
    """Feeds SSE events to a dialect parser and stamps token-carrying chunks on ``record``."""

    __slots__ = ("_decoder", "_parser", "_record", "_times", "events")

    def __init__(self, record: RequestRecord, parser: ChatStreamParser) -> None:
        self._record = record
        self._parser = parser
        self._decoder = SSEDecoder()
        self._times = record.token_chunk_times_s
        self.events = 0

    def feed(self, data: bytes, now: float) -> None:
        self._dispatch(self._decoder.feed(data), now)

    def end(self, now: float) -> None:
        self._dispatch(self._decoder.end(), now)
        record = self._record
        record.end_s = now
        if self._times:
            record.first_token_s = self._times[0]
            record.last_token_s = self._times[-1]
        record.finish_reason = self._parser.finish_reason
        apply_usage(record, self._parser.usage, counted=self._parser.token_chunks)
        failure = self._failure()
        if failure is not None:
            record.fail(*failure)

    def _dispatch(self, events: list[SSEEvent], now: float) -> None:
        parser = self._parser
        for event in events:
            self.events += 1
            flags = parser.feed(event)
            if flags:
                self._times.append(now)
                if flags & CONTENT and self._record.first_content_s is None:
                    self._record.first_content_s = now

    def _failure(self) -> tuple[FailureKind, str] | None:
        parser = self._parser
        if parser.error is not None:
            return FailureKind.STREAM_ERROR, f"error in stream: {parser.error.message}"
        if parser.protocol_error is not None:
            return FailureKind.PROTOCOL_ERROR, parser.protocol_error
        if self.events == 0:
            return FailureKind.PROTOCOL_ERROR, "the response holds no server-sent events"
        if not parser.finished:
            return FailureKind.TRUNCATED, "stream ended without [DONE] or finish_reason"
        if parser.token_chunks == 0:
            return FailureKind.EMPTY_RESPONSE, "the stream carried no tokens"
        return None


def apply_usage(record: RequestRecord, usage: Usage | None, counted: int | None) -> None:
    """Tokens from the server's usage when it sent them, else the count of token chunks."""
    if usage is not None:
        record.prompt_tokens = usage.prompt_tokens
    if usage is not None and usage.completion_tokens is not None:
        record.output_tokens = usage.completion_tokens
        record.output_tokens_source = TokenSource.USAGE
    elif counted is not None:
        record.output_tokens = counted
        record.output_tokens_source = TokenSource.COUNTED
