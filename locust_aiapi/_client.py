"""One AI call, measured: request -> timestamps and tokens in a RequestRecord, with retries.

This is the I/O loop of STYLE.md: it stamps time and hands bytes to the sans-IO decoder and
dialect parser; nothing else happens per chunk.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import gevent
from gevent import GreenletExit
from geventhttpclient.client import HTTPClientPool

from ._errors import ResponseError
from ._http_errors import header_text, http_failed, is_json, json_instead_of_stream
from ._hub_reads import pump
from ._limits import Deadlines, Limits
from ._records import (
    ChatResult,
    EmbeddingResult,
    FailureKind,
    Outcome,
    RequestKind,
    RequestRecord,
    ThinkingBlock,
    ToolCall,
    Usage,
)
from ._redaction import Redactor
from ._requests import ChatRequest, EmbeddingRequest, RequestStart
from ._retry import RetryPolicy
from ._stream import StreamRecorder, apply_usage
from ._tokenizer import count_received_text
from ._transport import (
    BodyReader,
    Response,
    classify_exception,
    read_limited,
    send_request,
)
from .dialects.base import ChatDialect, EmbeddingsDialect, thinking_blocks_of, tool_calls_of

__all__ = ["AIClient"]

perf_counter = time.perf_counter
_RETRY_JITTER = random.Random()  # one per process: a Random's state is 2.5 KiB, per user at 10,000 users
# imported before --processes forks; a Random, unlike the random module, is not reseeded in a child
os.register_at_fork(after_in_child=_RETRY_JITTER.seed)


@dataclass(slots=True)
class _ChatOutput:
    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    thinking_blocks: tuple[ThinkingBlock, ...] = ()


@dataclass(slots=True)
class _EmbeddingOutput:
    vectors: list[list[float]] = field(default_factory=list)
    usage: Usage | None = None


_Output = TypeVar("_Output", _ChatOutput, _EmbeddingOutput)


class AIClient:
    """Performs AI requests over a geventhttpclient pool and reports one record per call."""

    def __init__(
        self,
        pool: HTTPClientPool,
        headers: Mapping[str, str],
        dialect: ChatDialect,
        retry: RetryPolicy,
        report: Callable[[RequestRecord], None],
        rng: random.Random | None = None,
        limits: Limits | None = None,
        count_text: Callable[[str], int] | None = None,
    ) -> None:
        self._pool = pool
        self._count_text = count_text  # tokens of received text, for streams without usage
        self._limits = limits or Limits()
        self._headers = dict(headers)
        self._redact = Redactor.from_headers(self._headers)
        self._dialect = dialect
        self._retry = retry
        self._report = report
        self._rng = rng or _RETRY_JITTER

    def chat(self, request: ChatRequest) -> ChatResult:
        body = self._dialect.build_chat_request(
            model=request.model,
            messages=request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stream=request.stream,
            extra_body=request.extra_body,
        )
        headers = self._headers_for(request.stream)
        start = RequestStart.at(request.intended_start_s)

        def attempt(record: RequestRecord) -> _ChatOutput:
            return self._chat_attempt(record, request.url, body, headers, request.stream)

        def new_record(attempt: int, first_e2e_ms: float | None) -> RequestRecord:
            return start.record(request, RequestKind.CHAT, request.stream, attempt, first_e2e_ms)

        output, record = self._run(new_record, attempt, _ChatOutput)
        return ChatResult(
            output.text, output.reasoning, output.usage, record, output.tool_calls, output.thinking_blocks
        )

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        embeddings = self._dialect.embeddings
        if embeddings is None:  # a failure like any other (counted, reported), not an exception per call
            start = RequestStart.at(request.intended_start_s)
            record = start.record(request, RequestKind.EMBEDDINGS, False, 1, None)
            record.fail(FailureKind.CLIENT_ERROR, f"the {self._dialect.name} dialect has no embeddings API")
            record.end_s = perf_counter()
            self._publish(record)
            return EmbeddingResult([], None, record)
        body = embeddings.build_request(
            model=request.model,
            input=request.inputs,
            dimensions=request.dimensions,
            encoding_format=request.encoding_format,
            extra_body=request.extra_body,
        )
        start = RequestStart.at(request.intended_start_s)

        def new_record(attempt: int, first_e2e_ms: float | None) -> RequestRecord:
            return start.record(request, RequestKind.EMBEDDINGS, False, attempt, first_e2e_ms)

        def attempt(record: RequestRecord) -> _EmbeddingOutput:
            return self._embedding_attempt(record, request, body, embeddings)

        output, record = self._run(new_record, attempt, _EmbeddingOutput)
        return EmbeddingResult(output.vectors, output.usage, record)

    # -- attempts and retries -------------------------------------------------------------

    def _run(
        self,
        new_record: Callable[[int, float | None], RequestRecord],
        attempt: Callable[[RequestRecord], _Output],
        empty: Callable[[], _Output],
    ) -> tuple[_Output, RequestRecord]:
        """Attempts until one succeeds or the policy stops; each attempt is a fresh record, and only
        the last one is reported (its start is the first attempt's: latency includes back-off)."""
        first_e2e_ms: float | None = None
        number = 1
        while True:
            record = new_record(number, first_e2e_ms)
            output = empty()
            try:
                output = _guarded(record, attempt, empty)
                retry = not record.ok and self._retry.should_retry(record.failure_kind, number - 1)
                if retry:
                    if first_e2e_ms is None:
                        first_e2e_ms = (record.end_s - record.start_s) * 1000.0
                    gevent.sleep(self._retry.delay_s(number - 1, record.retry_after_s, self._rng))
            except GreenletExit:
                _cancel(record)
                self._publish(record)
                raise
            if not retry:
                self._publish(record)
                return output, record
            number += 1

    def _headers_for(self, stream: bool) -> dict[str, str]:
        headers = dict(self._headers)
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Accept", "text/event-stream" if stream else "application/json")
        headers.setdefault("Accept-Encoding", "identity")
        return headers

    def _publish(self, record: RequestRecord) -> None:
        """The record is final: server text in it is redacted here, once, then it is reported."""
        record.failure_message = self._redact.optional(record.failure_message)
        record.request_id = self._redact.optional(record.request_id)
        record.finish_reason = self._redact.optional(record.finish_reason)
        record.served_model = self._redact.optional(record.served_model)
        self._report(record)

    def _open(
        self, record: RequestRecord, url: str, body: bytes, headers: Mapping[str, str], deadlines: Deadlines
    ) -> Response:
        response = send_request(self._pool, url, body, headers, deadlines)
        record.headers_s = getattr(response, "rx_arrived_s", None) or perf_counter()  # kernel stamp if any
        record.status_code = response.status_code
        record.request_id = header_text(response.get("x-request-id"))
        return response

    def _chat_attempt(
        self, record: RequestRecord, url: str, body: bytes, headers: Mapping[str, str], stream: bool
    ) -> _ChatOutput:
        deadlines = Deadlines(self._limits, perf_counter(), first_token=stream)
        response = self._open(record, url, body, headers, deadlines)
        try:
            if http_failed(record, response, deadlines, self._dialect, self._limits):
                return _ChatOutput()
            if stream and is_json(response):  # an error object, or a whole answer, instead of a stream
                json_instead_of_stream(record, response, deadlines, self._dialect, self._limits)
                return _ChatOutput()
            if stream:
                return self._consume_stream(record, response, deadlines)
            return self._consume_completion(record, response, deadlines)
        finally:
            response.release()  # closes a connection whose body was not read to the end

    def _consume_stream(self, record: RequestRecord, response: Response, deadlines: Deadlines) -> _ChatOutput:
        """The hot loop: read what has arrived, stamp it, hand it on. Nothing else.

        Until the first token the loop also looks for it, so the TTFT deadline ends then: comments
        and keep-alive bytes are no progress towards a first token.
        """
        parser = self._dialect.stream_parser()
        recorder = StreamRecorder(record, parser, body_error=self._dialect.parse_body_error)
        reader = BodyReader(response, deadlines)
        try:
            pump(record, recorder, reader)
        except GreenletExit:
            recorder.interrupted()
            raise
        except Exception as exc:  # a failed stream keeps what it measured, text included
            recorder.interrupted()
            _fail(record, exc)
            record.end_s = perf_counter()
        else:
            recorder.end(reader.arrived_s)  # when the body's last bytes arrived (kernel stamp if any)
            count_received_text(record, parser.text + parser.reasoning, self._count_text)
        finally:
            reader.close()
        return _ChatOutput(
            parser.text, parser.reasoning, parser.usage, tool_calls_of(parser), thinking_blocks_of(parser)
        )

    def _consume_completion(
        self, record: RequestRecord, response: Response, deadlines: Deadlines
    ) -> _ChatOutput:
        body = read_limited(response, deadlines, self._limits.max_body_bytes, "the response body")
        record.end_s = perf_counter()
        completion = self._dialect.parse_chat_response(body)
        record.finish_reason = completion.finish_reason
        record.served_model = completion.model
        apply_usage(record, completion.usage, counted=None)
        if not completion.text and not completion.reasoning:
            record.fail(FailureKind.EMPTY_RESPONSE, "the answer has no content")
        return _ChatOutput(
            completion.text, completion.reasoning, completion.usage, completion.tool_calls,
            completion.thinking_blocks,
        )  # fmt: skip

    def _embedding_attempt(
        self, record: RequestRecord, request: EmbeddingRequest, body: bytes, embeddings: EmbeddingsDialect
    ) -> _EmbeddingOutput:
        deadlines = Deadlines(self._limits, perf_counter(), first_token=False)
        response = self._open(record, request.url, body, self._headers_for(False), deadlines)
        try:
            if http_failed(record, response, deadlines, self._dialect, self._limits):
                return _EmbeddingOutput()
            data = read_limited(response, deadlines, self._limits.max_body_bytes, "the response body")
            record.end_s = perf_counter()
        finally:
            response.release()
        parsed = embeddings.parse_response(
            data,
            expected_count=request.count,
            encoding_format=request.encoding_format,
            expected_dimensions=request.dimensions,
        )
        record.served_model = parsed.model
        if parsed.usage is not None:
            record.prompt_tokens = parsed.usage.prompt_tokens
        return _EmbeddingOutput(parsed.vectors, parsed.usage)


def _fail(record: RequestRecord, exc: Exception) -> None:
    """An exception of an attempt as a failure of the record: our own kinds kept, I/O ones classified."""
    if isinstance(exc, ResponseError):
        record.fail(exc.kind, str(exc))
    else:
        record.fail(*classify_exception(exc))


def _guarded(
    record: RequestRecord, attempt: Callable[[RequestRecord], _Output], empty: Callable[[], _Output]
) -> _Output:
    """Run one attempt; whatever goes wrong becomes a failure on the record, never an exception."""
    output = empty()
    try:
        output = attempt(record)
    except Exception as exc:
        _fail(record, exc)
    if not record.end_s:
        record.end_s = perf_counter()
    return output


def _cancel(record: RequestRecord) -> None:
    """The test stopped the user while this attempt (or its back-off) ran."""
    if record.ok or record.failure_kind is None:
        record.failure_message = "test stopped while the request was in flight"
    record.outcome = Outcome.CANCELLED
    if not record.end_s:
        record.end_s = perf_counter()
