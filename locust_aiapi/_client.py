"""One AI call, measured: request -> timestamps and tokens in a RequestRecord, with retries.

This is the I/O loop of STYLE.md: it stamps time and hands bytes to the sans-IO decoder and
dialect parser; nothing else happens per chunk.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import gevent
from gevent import GreenletExit
from geventhttpclient.client import HTTPClientPool

from ._errors import ProtocolError, ResponseError
from ._limits import Deadlines, Limits
from ._records import (
    ChatResult,
    EmbeddingResult,
    FailureKind,
    Outcome,
    RequestKind,
    RequestRecord,
    Usage,
)
from ._redaction import Redactor
from ._requests import ChatRequest, EmbeddingRequest, RequestStart
from ._retry import RetryPolicy, parse_retry_after
from ._stream import StreamRecorder, apply_usage
from ._transport import (
    BodyReader,
    Response,
    classify_exception,
    decoded,
    read_body,
    read_limited,
    send_request,
)
from .dialects.base import ChatDialect
from .dialects.openai import build_embeddings_request, parse_embeddings_response

__all__ = ["AIClient"]

perf_counter = time.perf_counter


@dataclass(slots=True)
class _ChatOutput:
    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None


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
    ) -> None:
        self._pool = pool
        self._limits = limits or Limits()
        self._headers = dict(headers)
        self._redact = Redactor.from_headers(self._headers)
        self._dialect = dialect
        self._retry = retry
        self._report = report
        self._rng = rng or random.Random()

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
        return ChatResult(output.text, output.reasoning, output.usage, record)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        body = build_embeddings_request(
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
            return self._embedding_attempt(record, request, body)

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
        self._report(record)

    def _open(
        self, record: RequestRecord, url: str, body: bytes, headers: Mapping[str, str], deadlines: Deadlines
    ) -> Response:
        response = send_request(self._pool, url, body, headers, deadlines)
        record.headers_s = perf_counter()
        record.status_code = response.status_code
        record.request_id = _text(response.get("x-request-id"))
        return response

    def _error_message(self, response: Response, deadlines: Deadlines) -> str:
        """The server's message from an error body, reading at most what is kept of it."""
        limit = self._limits.max_error_body_bytes
        body, _ = read_body(response, deadlines, limit)
        text = decoded(body, _text(response.get("content-encoding")), limit)
        try:
            return self._dialect.parse_error_message(text)
        except (RecursionError, ValueError):  # nested too deep for the parser: still the server's error
            return "(an error body that cannot be parsed)"

    def _http_failed(self, record: RequestRecord, response: Response, deadlines: Deadlines) -> bool:
        status = response.status_code
        if 200 <= status < 300:
            return False
        message = f"HTTP {status}: {self._error_message(response, deadlines)}"
        record.end_s = perf_counter()
        if status == 429:
            record.retry_after_s = parse_retry_after(_text(response.get("retry-after")), time.time())
            record.fail(FailureKind.RATE_LIMITED, message)
        elif 400 <= status < 500:
            record.fail(FailureKind.CLIENT_ERROR, message)
        elif status >= 500:
            record.fail(FailureKind.SERVER_ERROR, message)
        else:
            record.fail(FailureKind.PROTOCOL_ERROR, f"unexpected HTTP status {status}")
        return True

    def _chat_attempt(
        self, record: RequestRecord, url: str, body: bytes, headers: Mapping[str, str], stream: bool
    ) -> _ChatOutput:
        deadlines = Deadlines(self._limits, perf_counter(), first_token=stream)
        response = self._open(record, url, body, headers, deadlines)
        try:
            if self._http_failed(record, response, deadlines):
                return _ChatOutput()
            if stream and _is_json(response):
                message = self._error_message(response, deadlines)
                raise ProtocolError(f"HTTP {response.status_code} application/json, not a stream: {message}")
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
        recorder = StreamRecorder(record, parser)
        reader = BodyReader(response, deadlines)
        try:
            while data := reader.read():
                recorder.feed(data, perf_counter())
                if record.first_token_s is not None or record.token_chunk_times_s:
                    reader.token_arrived()
                    break
            while data := reader.read():
                recorder.feed(data, perf_counter())
        finally:
            reader.close()
        recorder.end(perf_counter())
        return _ChatOutput(parser.text, parser.reasoning, parser.usage)

    def _consume_completion(
        self, record: RequestRecord, response: Response, deadlines: Deadlines
    ) -> _ChatOutput:
        body = read_limited(response, deadlines, self._limits.max_body_bytes, "the response body")
        record.end_s = perf_counter()
        completion = self._dialect.parse_chat_response(body)
        record.finish_reason = completion.finish_reason
        apply_usage(record, completion.usage, counted=None)
        if not completion.text and not completion.reasoning:
            record.fail(FailureKind.EMPTY_RESPONSE, "the answer has no content")
        return _ChatOutput(completion.text, completion.reasoning, completion.usage)

    def _embedding_attempt(
        self, record: RequestRecord, request: EmbeddingRequest, body: bytes
    ) -> _EmbeddingOutput:
        deadlines = Deadlines(self._limits, perf_counter(), first_token=False)
        response = self._open(record, request.url, body, self._headers_for(False), deadlines)
        try:
            if self._http_failed(record, response, deadlines):
                return _EmbeddingOutput()
            data = read_limited(response, deadlines, self._limits.max_body_bytes, "the response body")
            record.end_s = perf_counter()
        finally:
            response.release()
        vectors, usage = parse_embeddings_response(
            data,
            expected_count=request.count,
            encoding_format=request.encoding_format,
            expected_dimensions=request.dimensions,
        )
        if usage is not None:
            record.prompt_tokens = usage.prompt_tokens
        return _EmbeddingOutput(vectors, usage)


def _text(value: object) -> str | None:
    """A header's value; a header sent twice comes back as a list, and its first value is kept."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def _is_json(response: Response) -> bool:
    content_type = _text(response.get("content-type")) or ""
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _guarded(
    record: RequestRecord, attempt: Callable[[RequestRecord], _Output], empty: Callable[[], _Output]
) -> _Output:
    """Run one attempt; whatever goes wrong becomes a failure on the record, never an exception."""
    output = empty()
    try:
        output = attempt(record)
    except ResponseError as exc:
        record.fail(exc.kind, str(exc))
    except Exception as exc:
        record.fail(*classify_exception(exc))
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
