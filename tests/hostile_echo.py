"""Scenarios that echo the API key back, and the llama.cpp / llama-cpp-python shapes of an answer."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

import orjson

from tests.hostile_server import Conn, ReceivedRequest, Scenario
from tests.hostile_wire import (
    DONE,
    LAST_CHUNK,
    SSE_HEADERS,
    TOKENS,
    chunk,
    chunked,
    error_body,
    event,
    send_json,
    start_stream,
    write_stream,
)

ECHO_PLACES = ("stream_error", "error_object", "request_id_header", "finish_reason", "unauthorized_b64")


def key_forms(key: str) -> tuple[str, str, str]:
    """The key raw, base64-encoded (standard alphabet, padded) and URL-encoded (nothing kept safe)."""
    return key, base64.b64encode(key.encode()).decode(), urllib.parse.quote(key, safe="")


def echo_key(place: str = "stream_error") -> Scenario:
    """Send the request's key back in one ``place`` of ``ECHO_PLACES`` (all three forms, except the 401).

    Use a key with ``/``, ``+`` or ``=`` in tests, so its three forms differ."""
    if place not in ECHO_PLACES:
        raise ValueError(f"place must be one of {ECHO_PLACES}, not {place!r}")

    def run(request: ReceivedRequest, conn: Conn) -> None:
        raw, b64, url = key_forms(request.api_key or "")
        text = f"Incorrect API key provided: {raw} (base64 {b64}, url {url})"
        if place == "stream_error":
            start_stream(conn)
            conn.write(
                chunked(event(chunk({"role": "assistant", "content": ""})) + event(chunk({"content": "Hi"})))
            )
            conn.token_chunks += 1
            error = {"error": {"message": text, "type": "invalid_request_error", "code": "invalid_api_key"}}
            conn.write(chunked(event(error)) + LAST_CHUNK)
        elif place == "error_object":
            send_json(conn, 400, error_body(text, "invalid_request_error", "invalid_api_key"))
        elif place == "request_id_header":
            headers = [*SSE_HEADERS[:-1], ("x-request-id", f"req-{raw}-{b64}-{url}")]
            write_stream(conn, TOKENS, headers=headers)
        elif place == "finish_reason":
            _stream_ending_with(conn, text)
        else:
            body = error_body(
                f"Invalid authentication credentials: {b64}", "invalid_request_error", "invalid_api_key"
            )
            send_json(conn, 401, body)

    return run


def _stream_ending_with(conn: Conn, finish_reason: str) -> None:
    start_stream(conn)
    conn.write(chunked(event(chunk({"role": "assistant", "content": ""}))))
    for token in TOKENS:
        conn.write(chunked(event(chunk({"content": token}))))
        conn.token_chunks += 1
    conn.write(chunked(event(chunk({}, finish_reason)) + DONE) + LAST_CHUNK)


def _inputs(request: ReceivedRequest) -> int:
    payload = request.json()
    value = payload.get("input") if isinstance(payload, dict) else None
    return len(value) if isinstance(value, list) else 1


def embeddings(request: ReceivedRequest, conn: Conn, matrix: bool, tokens: int = 4, dims: int = 8) -> None:
    """One embedding per input: a flat list of ``dims`` floats, or (llama.cpp) ``tokens`` such lists."""

    def vector(i: int, t: int) -> list[float]:
        return [round(((i * 31 + t * 7 + d) % 17) / 17 - 0.5, 6) for d in range(dims)]

    data: list[dict[str, Any]] = []
    for i in range(_inputs(request)):
        value: Any = [vector(i, t) for t in range(tokens)] if matrix else vector(i, 0)
        data.append({"object": "embedding", "index": i, "embedding": value})
    body = {
        "object": "list",
        "data": data,
        "model": "nomic-embed-text-v1.5",
        "usage": {"prompt_tokens": tokens * len(data), "total_tokens": tokens * len(data)},
    }
    send_json(conn, 200, orjson.dumps(body))


def embeddings_matrix(tokens: int = 4, dims: int = 8) -> Scenario:
    """llama.cpp with pooling off: each ``embedding`` is a per-token list of ``tokens`` lists of ``dims``."""
    return lambda request, conn: embeddings(request, conn, matrix=True, tokens=tokens, dims=dims)


def no_usage_empty_deltas(tokens: int = 64, empty: int = 25) -> Scenario:
    """llama-cpp-python: role chunk, ``tokens`` token chunks (``empty`` of them ``"content": ""``, spread
    evenly), a finish chunk, ``[DONE]``, and no usage anywhere. ``token_chunks`` counts all ``tokens``."""
    if not 0 <= empty <= tokens:
        raise ValueError("need 0 <= empty <= tokens")

    def run(request: ReceivedRequest, conn: Conn) -> None:
        start_stream(conn, [header for header in SSE_HEADERS if header[0] != "x-request-id"])
        conn.write(chunked(event(chunk({"role": "assistant"}, openai=False))))
        for i in range(tokens):
            is_empty = (i + 1) * empty // tokens != i * empty // tokens
            conn.write(chunked(event(chunk({"content": "" if is_empty else f" w{i}"}, openai=False))))
            conn.token_chunks += 1
            conn.note("empty_chunks", int(is_empty))
        conn.write(chunked(event(chunk({}, "stop", openai=False)) + DONE) + LAST_CHUNK)

    return run
