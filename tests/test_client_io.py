"""The I/O loop against a real, scripted HTTP server on loopback (no mocked network)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gevent
import orjson
import pytest
from gevent.server import StreamServer
from geventhttpclient.response import HTTPResponse, HTTPSocketPoolResponse

from locust_aiapi import FailureKind, Outcome, RequestRecord, RetryPolicy, ttft_ms
from locust_aiapi._client import AIClient
from locust_aiapi._head import BoundedResponse
from locust_aiapi._records import StampSource
from locust_aiapi._requests import ChatRequest, EmbeddingRequest
from locust_aiapi._rx_stamps import KERNEL_STAMPS_AVAILABLE
from locust_aiapi._transport import join_url
from locust_aiapi.dialects import OPENAI

from .client_pools import client_pool

Step = tuple[float, bytes]  # (sleep seconds before writing, bytes); b"" closes the connection


def sse(payload: dict | str) -> bytes:  # type: ignore[type-arg]
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return f"data: {data}\n\n".encode()


def delta(content: str, finish: str | None = None) -> bytes:
    return sse({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    b"x-request-id: req_abc\r\n\r\n"
)
END = b"0\r\n\r\n"


def plain(status: str, body: bytes, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


@dataclass
class ScriptedServer:
    """Answers the n-th request with the n-th script (the last one repeats)."""

    scripts: list[list[Step]]
    requests: list[bytes] = field(default_factory=list)

    def handle(self, sock: socket.socket, _address: object) -> None:
        while True:
            request = self._read_request(sock)
            if request is None:
                return
            script = self.scripts[min(len(self.requests), len(self.scripts) - 1)]
            self.requests.append(request)
            for delay, data in script:
                if delay:
                    gevent.sleep(delay)
                if not data:
                    sock.close()
                    return
                sock.sendall(data)

    @staticmethod
    def _read_request(sock: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            part = sock.recv(65536)
            if not part:
                return None
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length:
            body += sock.recv(65536)
        return head + b"\r\n\r\n" + body


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[StreamServer] = []

    def start(*scripts: list[Step]) -> tuple[str, ScriptedServer]:
        scripted = ScriptedServer(list(scripts))
        server = StreamServer(("127.0.0.1", 0), scripted.handle)
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", scripted

    yield start
    for server in servers:
        server.stop(timeout=1)


def make_client(
    retry: RetryPolicy | None = None, timeout: float = 5.0
) -> tuple[AIClient, list[RequestRecord]]:
    reported: list[RequestRecord] = []
    pool = client_pool(network_timeout=timeout, connection_timeout=timeout, concurrency=4)
    client = AIClient(pool, {"Authorization": "Bearer k"}, OPENAI, retry or RetryPolicy(), reported.append)
    return client, reported


def chat(client: AIClient, url: str) -> RequestRecord:
    request = ChatRequest(
        "chat", url + "/v1/chat/completions", "m", [{"role": "user", "content": "hi"}], True
    )
    return client.chat(request).record


def test_a_token_is_handed_on_when_it_arrives_not_when_a_buffer_fills(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = serve(
        [
            (0, STREAM_HEAD + chunked(delta("first"))),
            (0.3, chunked(delta(" second", "stop") + sse("[DONE]")) + END),
        ]
    )
    client, reported = make_client()
    record = chat(client, url)
    assert record.outcome is Outcome.SUCCESS, record.failure_message
    assert (ttft_ms(record) or 0) < 100.0  # the second write came 300 ms later
    assert (record.end_s - record.start_s) >= 0.3
    assert record.request_id == "req_abc"
    assert reported == [record]


def test_rate_limited_response_keeps_status_message_and_retry_after(serve) -> None:  # type: ignore[no-untyped-def]
    body = orjson.dumps(
        {"error": {"message": "Rate limit reached for gpt-4.1", "code": "rate_limit_exceeded"}}
    )
    url, _ = serve([(0, plain("429 Too Many Requests", body, "Retry-After: 2"))])
    client, reported = make_client()
    record = chat(client, url)
    assert record.failure_kind is FailureKind.RATE_LIMITED
    assert record.status_code == 429
    assert record.retry_after_s == 2.0
    assert "Rate limit reached for gpt-4.1" in (record.failure_message or "")
    assert len(reported) == 1


def test_retry_honours_retry_after_and_keeps_first_attempt_latency(serve) -> None:  # type: ignore[no-untyped-def]
    limited = plain("429 Too Many Requests", b'{"error":{"message":"slow down"}}', "Retry-After: 0.25")
    ok = STREAM_HEAD + chunked(delta("hi", "stop") + sse("[DONE]")) + END
    url, server = serve([(0, limited)], [(0, ok)])
    # back-off alone would wait ~0.01-0.02 s; Retry-After (under the 0.5 s cap) makes it 0.25 s
    client, reported = make_client(RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.5))
    record = chat(client, url)
    assert record.outcome is Outcome.SUCCESS
    assert record.attempts == 2 and len(server.requests) == 2
    assert record.first_attempt_e2e_ms is not None and record.first_attempt_e2e_ms < 200
    assert (record.end_s - record.start_s) >= 0.25  # the back-off is part of what the user waited
    assert len(reported) == 1


def test_retries_stop_after_max_retries(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = serve([(0, plain("503 Service Unavailable", b'{"error":{"message":"busy"}}'))])
    client, reported = make_client(RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.02))
    record = chat(client, url)
    assert record.failure_kind is FailureKind.SERVER_ERROR and record.attempts == 3
    assert len(server.requests) == 3 and len(reported) == 1


def test_connection_refused_is_a_failure_not_an_exception() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client, reported = make_client()
    record = chat(client, f"http://127.0.0.1:{port}")
    assert record.failure_kind is FailureKind.CONNECTION_ERROR
    assert "refused" in (record.failure_message or "")
    assert reported == [record]


def test_connection_closed_mid_stream(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = serve([(0, STREAM_HEAD + chunked(delta("partial"))), (0.05, b"")])
    client, _ = make_client()
    record = chat(client, url)
    assert record.failure_kind is FailureKind.CONNECTION_ERROR
    assert len(record.token_chunk_times_s) == 1  # what arrived is kept


def test_read_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = serve([(0, STREAM_HEAD + chunked(delta("a"))), (2.0, END)])
    client, _ = make_client(timeout=0.3)
    started = time.monotonic()
    record = chat(client, url)
    assert record.failure_kind is FailureKind.TIMEOUT
    assert time.monotonic() - started < 1.5


def test_clean_end_without_done_is_truncated(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = serve([(0, STREAM_HEAD + chunked(delta("a")) + END)])
    client, _ = make_client()
    assert chat(client, url).failure_kind is FailureKind.TRUNCATED


def test_non_streamed_chat_takes_tokens_from_usage(serve) -> None:  # type: ignore[no-untyped-def]
    body = orjson.dumps(
        {
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
    )
    url, server = serve([(0, plain("200 OK", body))])
    client, _ = make_client()
    request = ChatRequest(
        "chat", url + "/v1/chat/completions", "m", [{"role": "user", "content": "hi"}], False
    )
    result = client.chat(request)
    assert result.ok and result.text == "Hi!"
    assert result.record.output_tokens == 3 and result.record.prompt_tokens == 5
    assert b'"stream":false' in server.requests[0]


def test_embeddings_with_a_missing_vector_are_invalid(serve) -> None:  # type: ignore[no-untyped-def]
    body = orjson.dumps({"data": [{"index": 0, "embedding": [0.1, 0.2]}], "usage": {"prompt_tokens": 4}})
    url, _ = serve([(0, plain("200 OK", body))])
    client, reported = make_client()
    result = client.embed(EmbeddingRequest("emb", url + "/v1/embeddings", "e", ["a", "b"]))
    assert result.record.failure_kind is FailureKind.INVALID_RESPONSE
    assert result.vectors == [] and len(reported) == 1


def test_api_key_is_sent_as_bearer_token(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = serve([(0, STREAM_HEAD + chunked(delta("a", "stop") + sse("[DONE]")) + END)])
    client, _ = make_client()
    chat(client, url)
    assert b"Authorization: Bearer k" in server.requests[0]
    assert b"stream_options" in server.requests[0]


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("http://h:1", "/v1/chat/completions", "http://h:1/v1/chat/completions"),
        ("http://h:1/", "/v1/chat/completions", "http://h:1/v1/chat/completions"),
        ("https://api.openai.com/v1", "/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
        ("https://gw.example/openai/v1/", "/v1/embeddings", "https://gw.example/openai/v1/embeddings"),
        ("https://gw.example/proxy", "/v1/embeddings", "https://gw.example/proxy/v1/embeddings"),
    ],
)
def test_join_url(host: str, path: str, expected: str) -> None:
    assert join_url(host, path) == expected


def test_a_key_echoed_in_an_error_message_is_redacted(serve) -> None:  # type: ignore[no-untyped-def]
    body = orjson.dumps({"error": {"message": "Incorrect API key provided: sk-live-123456. Check it."}})
    url, _ = serve([(0, plain("401 Unauthorized", body))])
    reported: list[RequestRecord] = []
    pool = client_pool(network_timeout=5, connection_timeout=5, concurrency=1)
    client = AIClient(
        pool, {"Authorization": "Bearer sk-live-123456"}, OPENAI, RetryPolicy(), reported.append
    )
    record = chat(client, url)
    assert record.failure_kind is FailureKind.CLIENT_ERROR
    assert record.failure_message == "HTTP 401: Incorrect API key provided: [redacted]. Check it."


def test_a_pooled_connection_gets_its_timeout_back_after_a_stream(serve) -> None:  # type: ignore[no-untyped-def]
    """The body is read without a socket timeout (one timer guards it): the keep-alive connection the
    next request reuses must wait under its own timeout again, or a silent server would hang it."""
    stream = [(0, STREAM_HEAD), (0.05, chunked(delta("a"))), (0.05, chunked(delta("", "stop")) + END)]
    url, scripted = serve(stream, [(2.0, STREAM_HEAD)])
    client, _ = make_client(timeout=0.3)
    assert chat(client, url).outcome is Outcome.SUCCESS
    started = time.monotonic()
    record = chat(client, url)
    assert len(scripted.requests) == 2  # the same connection, reused
    assert record.failure_kind is FailureKind.TIMEOUT
    assert time.monotonic() - started < 1.5


def test_a_stream_of_many_small_writes_is_read_whole(serve) -> None:  # type: ignore[no-untyped-def]
    """Reads that find the socket empty wait; reads that find several chunks hand them on together."""
    script: list[Step] = [(0, STREAM_HEAD)]
    script += [(0.002 if index % 10 == 0 else 0, chunked(delta(f"t{index} "))) for index in range(200)]
    script.append((0, chunked(delta("", "stop") + sse("[DONE]")) + END))
    url, _ = serve(script)
    client, _ = make_client()
    messages = [{"role": "user", "content": "hi"}]
    result = client.chat(ChatRequest("chat", url + "/v1/chat/completions", "m", messages, True))
    assert result.ok, result.record.failure_message
    assert result.text == "".join(f"t{index} " for index in range(200))
    assert result.record.output_tokens == 201


@pytest.mark.skipif(not KERNEL_STAMPS_AVAILABLE, reason="the record is checked for kernel stamps")
def test_a_stream_at_model_speed_costs_one_read_per_chunk(serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The hub reads a body's socket when it is readable (``_hub_reads``): no read that fails with EAGAIN
    (a system call and a raised exception) per chunk."""
    from locust_aiapi import _body_reader

    from .test_tls_stamps import _CountedReads

    raws: list[_CountedReads] = []
    real_init = _body_reader.BodyReader.__init__

    def counted(self: _body_reader.BodyReader, *args: Any) -> None:
        real_init(self, *args)
        raws.append(_CountedReads(self._raw))
        self._raw = raws[-1]

    monkeypatch.setattr(_body_reader.BodyReader, "__init__", counted)
    script: list[Step] = [(0, STREAM_HEAD)]
    script += [(0.01, chunked(delta(f"t{index} "))) for index in range(20)]
    script.append((0.01, chunked(delta("", "stop") + sse("[DONE]")) + END))
    url, _ = serve(script)
    client, _ = make_client()
    record = chat(client, url)
    assert record.ok and record.timestamps is StampSource.KERNEL, record.failure_message
    assert len(record.token_chunk_times_s) == 21
    reads, empty = raws[0].reads, raws[0].empty
    assert empty <= 2, (reads, empty)  # was one per chunk
    assert reads <= 24  # one per chunk and the end (fewer when a busy machine coalesced some)


def test_the_parser_finds_the_body_callback_on_the_responses_first_class() -> None:
    """geventhttpclient's C parser looks ``_on_body`` up by a new string for every body piece (never in
    the type's attribute cache): the walk of the MRO ends at the first class, with what inheritance gave,
    and an instance's own callback (what ``BodyReader`` sets) still gets the pieces the parser feeds."""
    for name in ("_on_body", "_on_header_field", "_on_header_value"):
        assert BoundedResponse.__dict__[name] is getattr(HTTPSocketPoolResponse, name), name
    response = BoundedResponse.__new__(BoundedResponse)  # no socket: only the parser and its callbacks
    HTTPResponse.__init__(response)
    response._sock = response._pool = None  # what its __del__ reads
    response._header_count = 0
    pieces: list[bytes] = []
    response._on_body = pieces.append  # type: ignore[method-assign,assignment]
    response.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n2\r\nok\r\n")
    response.feed(b"3\r\nabc\r\n0\r\n\r\n")
    assert pieces == [b"ok", b"abc"] and response.get("x-a") == "1" and response.message_complete
