"""Named misbehaviours for ``HostileServer``: each factory takes its parameters and returns a scenario.

``scenario("huge_error_body", size=1_000_000)`` or ``huge_error_body(size=1_000_000)``; every name in
``SCENARIOS`` writes exactly what it says and nothing else. Sizes are bytes on the wire (HTTP framing
excluded where a size names a body or a line). Every endless scenario has a byte or time bound.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from typing import Any

import orjson

from tests import hostile_echo
from tests.hostile_server import ClientGone, Conn, ReceivedRequest, Scenario
from tests.hostile_wire import (
    DONE,
    LAST_CHUNK,
    SSE_HEADERS,
    TOKENS,
    chunk,
    chunked,
    error_body,
    event,
    head,
    send_json,
    start_stream,
    token_events,
    usage_chunk,
    write_stream,
)

MB = 1_000_000
GB = 1_000_000_000
_PIECE_BYTES = 64 * 1024


def normal() -> Scenario:
    """What a well-behaved server answers: a chat stream, a chat completion or flat embeddings."""
    return answer_normally


def answer_normally(request: ReceivedRequest, conn: Conn) -> None:
    if request.path.endswith("/embeddings"):
        return hostile_echo.embeddings(request, conn, matrix=False)
    payload = request.json() or {}
    if payload.get("stream") is True:
        return write_stream(conn, TOKENS)
    message = {"role": "assistant", "content": "".join(TOKENS), "refusal": None}
    body = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": len(TOKENS), "total_tokens": 9 + len(TOKENS)},
    }
    return send_json(conn, 200, orjson.dumps(body))


def endless_headers(max_bytes: int = GB) -> Scenario:
    """A status line, then header lines at full speed until the client closes or ``max_bytes``."""
    block = b"".join(b"X-Hostile-%06d: %s\r\n" % (i, b"h" * 48) for i in range(1000))

    def run(request: ReceivedRequest, conn: Conn) -> None:
        conn.keep_alive = False
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        written = 0
        while written < max_bytes:
            conn.write(block)
            written += len(block)

    return run


def _write_padded(conn: Conn, prefix: bytes, size: int, suffix: bytes, frame: bool) -> None:
    """``prefix + "x" * pad + suffix`` of exactly ``size`` bytes, written in 64 KiB pieces."""
    pad = size - len(prefix) - len(suffix)
    if pad < 0:
        raise ValueError(f"size {size} is smaller than the fixed parts ({len(prefix) + len(suffix)})")
    piece = b"x" * _PIECE_BYTES
    conn.write(chunked(prefix) if frame else prefix)
    while pad > 0:
        part = piece[: min(pad, _PIECE_BYTES)]
        conn.write(chunked(part) if frame else part)
        pad -= len(part)
    conn.write(chunked(suffix) if frame else suffix)


def huge_error_body(size: int = 200 * MB, status: int = 500) -> Scenario:
    """A JSON error of exactly ``size`` bytes (Content-Length set), streamed in pieces."""
    prefix, suffix = (
        b'{"error":{"message":"huge error body: ',
        b'","type":"server_error","param":null,"code":null}}',
    )

    def run(request: ReceivedRequest, conn: Conn) -> None:
        conn.write(head(status, [("Content-Type", "application/json"), ("Content-Length", str(size))]))
        _write_padded(conn, prefix, size, suffix, frame=False)

    return run


def huge_sse_line(size: int = 50 * MB) -> Scenario:
    """200 text/event-stream with one ``data:`` line of ``size`` bytes (no newline until its end), [DONE]."""
    prefix, suffix = b'data: {"choices":[{"index":0,"delta":{"content":"', b'"},"finish_reason":null}]}'

    def run(request: ReceivedRequest, conn: Conn) -> None:
        start_stream(conn)
        _write_padded(conn, prefix, size, suffix, frame=True)
        conn.token_chunks += 1
        conn.write(chunked(b"\n\n" + DONE) + LAST_CHUNK)

    return run


def _token_flood(one_event: bytes, count: int | None, max_bytes: int) -> Scenario:
    """Token events batched ~64 KiB to one ``sendall``, as fast as the socket takes them."""
    per_batch = max(1, _PIECE_BYTES // len(one_event))
    batch = chunked(one_event * per_batch)

    def run(request: ReceivedRequest, conn: Conn) -> None:
        start_stream(conn)
        conn.write(chunked(event(chunk({"role": "assistant", "content": "", "refusal": None}))))
        left, written = count, 0
        while (left is None or left > 0) and written < max_bytes:
            n = per_batch if left is None else min(per_batch, left)
            conn.write(batch if n == per_batch else chunked(one_event * n))
            conn.token_chunks += n
            written += len(batch)
            left = None if left is None else left - n
        ending = event(chunk({}, "stop")) + event(usage_chunk(9, conn.token_chunks)) + DONE
        conn.write(chunked(ending) + LAST_CHUNK)

    return run


def flood(chunks: int | None = None, max_bytes: int = 4 * GB) -> Scenario:
    """A valid OpenAI chat stream of ``chunks`` tokens (None: until the client closes), full speed."""
    return _token_flood(event(chunk({"content": " token"})), chunks, max_bytes)


def many_chunks(n: int = 15_800_000) -> Scenario:
    """``n`` minimal token chunks (~60 bytes each) in one valid stream, then finish, usage, [DONE]."""
    return _token_flood(
        b'data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n', n, 1 << 62
    )


def many_choices(n: int = 200_000) -> Scenario:
    """One chunk holding ``n`` choices (index 0 .. n-1), between a normal role chunk and the ending."""

    def run(request: ReceivedRequest, conn: Conn) -> None:
        role, *_, finish = token_events([])
        payload = chunk({})
        payload["choices"] = [{"index": i, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None}
                              for i in range(n)]  # fmt: skip
        start_stream(conn)
        conn.write(chunked(role) + chunked(b"data: " + orjson.dumps(payload) + b"\n\n"))
        conn.token_chunks += 1
        conn.note("choices", n)
        conn.write(chunked(finish + event(usage_chunk(9, 1)) + DONE) + LAST_CHUNK)

    return run


def usage_numbers(completion_tokens: Any = 2**63 - 1) -> Scenario:
    """A valid stream whose usage says ``completion_tokens`` (any JSON value: huge, negative, 1.5, "12")."""
    return lambda request, conn: write_stream(conn, TOKENS, completion_tokens)


def interim_1xx(codes: tuple[int, ...] = (100, 103)) -> Scenario:
    """Interim responses, then a normal answer; the connection stays open for the next request."""
    extra = {103: [("Link", "</style.css>; rel=preload; as=style")]}

    def run(request: ReceivedRequest, conn: Conn) -> None:
        conn.write(b"".join(head(code, extra.get(code, [])) for code in codes))
        answer_normally(request, conn)

    return run


def retry_after(value: str = "3600", times: int = 1) -> Scenario:
    """The first ``times`` requests (server-wide) get 429 with ``Retry-After: value``, later ones normal."""
    lock, seen = threading.Lock(), [0]

    def run(request: ReceivedRequest, conn: Conn) -> None:
        with lock:
            seen[0] += 1
            limited = seen[0] <= times
        if not limited:
            return answer_normally(request, conn)
        conn.note("rate_limited")
        body = error_body("Rate limit reached for requests.", "requests", "rate_limit_exceeded")
        send_json(conn, 429, body, [("Retry-After", value)])

    return run


def deep_json_error(depth: int = 600, status: int = 400) -> Scenario:
    """A JSON error body nested exactly ``depth`` levels deep (the two error objects count)."""
    prefix = b'{"error":{"message":"nested too deep","type":"invalid_request_error","param":null,"detail":'
    body = prefix + b"[" * (depth - 2) + b"]" * (depth - 2) + b"}}"
    return lambda request, conn: send_json(conn, status, body)


def data_after_done(after: int = 5) -> Scenario:
    """A valid stream, then after ``[DONE]``: ``after`` token chunks and a usage chunk (noted only)."""

    def run(request: ReceivedRequest, conn: Conn) -> None:
        start_stream(conn)
        events = token_events(TOKENS)
        conn.write(chunked(b"".join(events) + event(usage_chunk(9, len(TOKENS))) + DONE))
        conn.token_chunks += len(TOKENS)
        late = event(chunk({"content": " late"})) * after + event(usage_chunk(9, 999))
        conn.write(chunked(late) + LAST_CHUNK)
        conn.note("after_done_chunks", after)

    return run


def json_error_200() -> Scenario:
    """HTTP 200 ``application/json`` holding an error object, whatever was asked (a stream too)."""
    body = error_body("The server had an error while processing your request.", "server_error")
    return lambda request, conn: send_json(conn, 200, body)


def gzip_error_body(status: int = 500) -> Scenario:
    """A gzip-encoded JSON error, even when the request asked for identity."""
    body = gzip.compress(error_body("The gzip-encoded server error message.", "server_error"), mtime=0)
    return lambda request, conn: send_json(conn, status, body, [("Content-Encoding", "gzip")])


def comments_only_then_close(count: int = 5, interval_s: float = 0.02, framed: bool = False) -> Scenario:
    """200 text/event-stream, ``count`` ``: ping`` comments, then a clean end: FIN (last chunk if framed)."""

    def run(request: ReceivedRequest, conn: Conn) -> None:
        headers = SSE_HEADERS if framed else (("Content-Type", "text/event-stream"), ("Connection", "close"))
        start_stream(conn, headers)
        conn.keep_alive = framed
        for _ in range(count):
            conn.write(chunked(b": ping\n\n") if framed else b": ping\n\n")
            conn.note("comments")
            conn.sleep(interval_s)
        if framed:
            conn.write(LAST_CHUNK)

    return run


def keepalive_forever(interval_s: float = 0.2, max_s: float = 120.0) -> Scenario:
    """Only ``: keep-alive`` comments every ``interval_s`` until the client closes (``max_s`` at most)."""

    def run(request: ReceivedRequest, conn: Conn) -> None:
        start_stream(conn)
        conn.keep_alive = False  # after max_s the body ends with the connection
        for _ in range(max(1, int(max_s / interval_s))):
            conn.write(chunked(b": keep-alive\n\n"))
            conn.note("comments")
            conn.sleep(interval_s)

    return run


def stall_after_headers(max_s: float = 120.0) -> Scenario:
    """Stream headers, then silence until the client closes (or ``max_s``, then the connection closes)."""

    def run(request: ReceivedRequest, conn: Conn) -> None:
        start_stream(conn)
        conn.keep_alive = False
        if conn.wait_closed(max_s):
            raise ClientGone("client closed during the stall")

    return run


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    factory.__name__: factory
    for factory in (
        normal,
        endless_headers,
        huge_error_body,
        huge_sse_line,
        flood,
        many_chunks,
        many_choices,
        usage_numbers,
        interim_1xx,
        retry_after,
        deep_json_error,
        data_after_done,
        json_error_200,
        gzip_error_body,
        comments_only_then_close,
        keepalive_forever,
        stall_after_headers,
        hostile_echo.echo_key,
        hostile_echo.embeddings_matrix,
        hostile_echo.no_usage_empty_deltas,
    )
}


def scenario(name: str, **params: Any) -> Scenario:
    return SCENARIOS[name](**params)
