"""One AI call, measured: request -> timestamps and tokens in a RequestRecord, with retries.

This is the I/O loop of STYLE.md: it stamps time and hands bytes to the sans-IO decoder and
dialect parser; nothing else happens per chunk.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent import GreenletExit
from geventhttpclient.client import HTTPClientPool

from ._errors import ConfigurationError, ResponseError
from ._records import (
    ChatResult,
    EmbeddingResult,
    FailureKind,
    Outcome,
    RequestKind,
    RequestRecord,
    Usage,
)
from ._retry import RetryPolicy, parse_retry_after
from ._stream import StreamRecorder, apply_usage
from ._transport import BodyReader, Response, classify_exception, read_all, send_request
from .dialects.base import ChatDialect, EmbeddingsDialect

__all__ = ["AIClient", "ChatRequest", "EmbeddingRequest"]

perf_counter = time.perf_counter


@dataclass(slots=True)
class ChatRequest:
    name: str
    url: str
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    max_tokens: int | None = None
    temperature: float | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EmbeddingRequest:
    name: str
    url: str
    model: str
    inputs: str | list[str]
    dimensions: int | None = None
    encoding_format: str = "float"
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return 1 if isinstance(self.inputs, str) else len(self.inputs)


@dataclass(slots=True)
class _ChatOutput:
    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None


@dataclass(slots=True)
class _EmbeddingOutput:
    vectors: list[list[float]] = field(default_factory=list)
    usage: Usage | None = None


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
    ) -> None:
        self._pool = pool
        self._headers = dict(headers)
        self._secrets = _secrets_in(self._headers)
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
        record = _new_record(request.name, RequestKind.CHAT, request.model, request.stream)
        output = _ChatOutput()

        def attempt() -> None:
            nonlocal output
            output = self._chat_attempt(record, request.url, body, headers, request.stream)

        self._run(record, attempt)
        return ChatResult(output.text, output.reasoning, output.usage, record)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        embeddings = self._dialect.embeddings
        if embeddings is None:
            raise ConfigurationError(f"the {self._dialect.name} dialect has no embeddings format")
        body = embeddings.build_request(
            model=request.model,
            input=request.inputs,
            dimensions=request.dimensions,
            encoding_format=request.encoding_format,
            extra_body=request.extra_body,
        )
        record = _new_record(request.name, RequestKind.EMBEDDINGS, request.model, False)
        output = _EmbeddingOutput()

        def attempt() -> None:
            nonlocal output
            output = self._embedding_attempt(record, request, body, embeddings)

        self._run(record, attempt)
        return EmbeddingResult(output.vectors, output.usage, record)

    # -- attempts and retries -------------------------------------------------------------

    def _run(self, record: RequestRecord, attempt: Callable[[], None]) -> None:
        try:
            self._attempt_with_retries(record, attempt)
        except GreenletExit:
            record.outcome = Outcome.CANCELLED
            record.failure_message = "test stopped while the request was in flight"
            record.end_s = perf_counter()
            self._report(record)
            raise
        self._report(record)

    def _attempt_with_retries(self, record: RequestRecord, attempt: Callable[[], None]) -> None:
        while True:
            _guarded(record, attempt)
            retries_done = record.attempts - 1
            if record.ok or not self._retry.should_retry(record.failure_kind, retries_done):
                return
            if record.first_attempt_e2e_ms is None:
                record.first_attempt_e2e_ms = (record.end_s - record.start_s) * 1000.0
            gevent.sleep(self._retry.delay_s(retries_done, record.retry_after_s, self._rng))
            _reset_attempt(record)
            record.attempts += 1

    def _headers_for(self, stream: bool) -> dict[str, str]:
        headers = dict(self._headers)
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Accept", "text/event-stream" if stream else "application/json")
        headers.setdefault("Accept-Encoding", "identity")
        return headers

    def _redact(self, text: str) -> str:
        """Servers may echo the key back ("Incorrect API key provided: sk-..."): never report it."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _open(self, record: RequestRecord, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        response = send_request(self._pool, url, body, headers)
        record.headers_s = perf_counter()
        record.status_code = response.status_code
        record.request_id = response.get("x-request-id")
        return response

    def _http_failed(self, record: RequestRecord, response: Response) -> bool:
        status = response.status_code
        if 200 <= status < 300:
            return False
        body = read_all(response)
        record.end_s = perf_counter()
        message = self._redact(f"HTTP {status}: {self._dialect.parse_error_message(body)}")
        if status == 429:
            record.retry_after_s = parse_retry_after(response.get("retry-after"), time.time())
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
        response = self._open(record, url, body, headers)
        try:
            if self._http_failed(record, response):
                return _ChatOutput()
            if stream:
                return self._consume_stream(record, response)
            return self._consume_completion(record, response)
        finally:
            response.release()

    def _consume_stream(self, record: RequestRecord, response: Response) -> _ChatOutput:
        """The hot loop: read what has arrived, stamp it, hand it on. Nothing else."""
        parser = self._dialect.stream_parser()
        recorder = StreamRecorder(record, parser, body_error=self._dialect.parse_body_error)
        reader = BodyReader(response)
        try:
            while data := reader.read():
                if not recorder.feed(data, perf_counter()):
                    break  # a bound was exceeded: the connection is closed, not reused
        except GreenletExit:
            recorder.interrupted()
            raise
        except Exception as exc:  # a failed stream keeps what it measured, text included
            recorder.interrupted()
            record.fail(*classify_exception(exc))
            record.end_s = perf_counter()
        else:
            recorder.end(perf_counter())
        finally:
            reader.close()
        return _ChatOutput(parser.text, parser.reasoning, parser.usage)

    def _consume_completion(self, record: RequestRecord, response: Response) -> _ChatOutput:
        body = read_all(response)
        record.end_s = perf_counter()
        completion = self._dialect.parse_chat_response(body)
        record.finish_reason = completion.finish_reason
        record.served_model = completion.model
        apply_usage(record, completion.usage, counted=None)
        if not completion.text and not completion.reasoning:
            record.fail(FailureKind.EMPTY_RESPONSE, "the answer has no content")
        return _ChatOutput(completion.text, completion.reasoning, completion.usage)

    def _embedding_attempt(
        self, record: RequestRecord, request: EmbeddingRequest, body: bytes, embeddings: EmbeddingsDialect
    ) -> _EmbeddingOutput:
        response = self._open(record, request.url, body, self._headers_for(False))
        try:
            if self._http_failed(record, response):
                return _EmbeddingOutput()
            data = read_all(response)
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


def _guarded(record: RequestRecord, attempt: Callable[[], None]) -> None:
    """Run one attempt; whatever goes wrong becomes a failure on the record, never an exception."""
    try:
        attempt()
    except ResponseError as exc:
        record.fail(exc.kind, str(exc))
    except Exception as exc:
        record.fail(*classify_exception(exc))
    if not record.end_s:
        record.end_s = perf_counter()


_SECRET_HEADERS = ("authorization", "api-key", "x-api-key")


def _secrets_in(headers: Mapping[str, str]) -> list[str]:
    """The credential values among the request headers (a Bearer token without its scheme)."""
    secrets = []
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS and value:
            token = value.split(" ", 1)[1] if value.lower().startswith("bearer ") else value
            if len(token) >= 4:
                secrets.append(token)
    return secrets


def _new_record(name: str, kind: RequestKind, model: str, streamed: bool) -> RequestRecord:
    return RequestRecord(
        name=name,
        kind=kind,
        model=model,
        streamed=streamed,
        start_epoch_s=time.time(),
        start_s=perf_counter(),
    )


def _reset_attempt(record: RequestRecord) -> None:
    """Forget what the failed attempt measured; start times stay (latency includes back-off)."""
    record.end_s = 0.0
    record.headers_s = record.first_token_s = record.first_content_s = record.last_token_s = None
    record.token_chunk_times_s = []
    record.chunk_times_capped = False
    record.served_model = None
    record.output_tokens = record.prompt_tokens = None
    record.output_tokens_source = None
    record.outcome = Outcome.SUCCESS
    record.failure_kind = None
    record.failure_message = None
    record.status_code = None
    record.request_id = None
    record.finish_reason = None


def message_list(prompt: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A prompt string becomes one user message; a list of messages is passed on as is."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]
