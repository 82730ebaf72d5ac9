"""Bytes of the OpenAI chat wire format and HTTP framing, for the hostile scenarios to write.

Field order follows recorded OpenAI streams (``id, object, created, model, service_tier,
system_fingerprint, choices, usage``; ``usage: null`` on every chunk when ``include_usage`` was asked,
then a final chunk with ``choices: []`` and the usage). llama.cpp-style chunks drop ``service_tier``
and ``usage``. Written here, not shared with the project's mock: the harness must not inherit its bugs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from tests.hostile_server import Conn

MODEL = "gpt-4.1-2025-04-14"
CHUNK_ID = "chatcmpl-HostileScenario0000000000001"
CREATED = 1_753_900_000
DONE = b"data: [DONE]\n\n"
REASONS = {
    100: "Continue",
    103: "Early Hints",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def head(status: int, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (an empty ``data`` would end the body, so refuse it)."""
    if not data:
        raise ValueError("an empty chunk ends a chunked body: use LAST_CHUNK")
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
SSE_HEADERS = (
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Transfer-Encoding", "chunked"),
    ("Cache-Control", "no-cache"),
    ("x-request-id", "req_hostile"),
)


def start_stream(conn: Conn, headers: Sequence[tuple[str, str]] = SSE_HEADERS) -> None:
    conn.write(head(200, headers))


def send_json(conn: Conn, status: int, body: bytes, extra: Iterable[tuple[str, str]] = ()) -> None:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra]
    conn.write(head(status, headers) + body)


def error_body(message: str, kind: str = "server_error", code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def event(payload: Any) -> bytes:
    """``data: <json>\\n\\n``; stdlib json so numbers outside 64 bits and floats pass through as written."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def chunk(delta: dict[str, Any], finish_reason: str | None = None, *, openai: bool = True) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    payload: dict[str, Any] = {
        "id": CHUNK_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
    }
    if openai:
        payload["service_tier"] = "default"
    payload["system_fingerprint"] = "fp_hostile01"
    payload["choices"] = [choice]
    if openai:
        payload["usage"] = None
    return payload


def usage(prompt_tokens: Any, completion_tokens: Any) -> dict[str, Any]:
    total = (
        prompt_tokens + completion_tokens if _is_int(prompt_tokens, completion_tokens) else completion_tokens
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _is_int(*values: Any) -> bool:
    return all(isinstance(value, int) and not isinstance(value, bool) for value in values)


def usage_chunk(prompt_tokens: Any, completion_tokens: Any) -> dict[str, Any]:
    payload = chunk({})
    payload["choices"] = []
    payload["usage"] = usage(prompt_tokens, completion_tokens)
    return payload


def token_events(tokens: Sequence[str], finish_reason: str = "stop") -> list[bytes]:
    """The role chunk, one chunk per token, the finish chunk (no usage, no ``[DONE]``)."""
    events = [event(chunk({"role": "assistant", "content": "", "refusal": None}))]
    events += [event(chunk({"content": token})) for token in tokens]
    return [*events, event(chunk({}, finish_reason))]


def write_stream(
    conn: Conn,
    tokens: Sequence[str],
    completion_tokens: Any = None,
    headers: Sequence[tuple[str, str]] = SSE_HEADERS,
) -> None:
    """A valid chunked stream: role, tokens, finish, usage (``completion_tokens`` or the count), [DONE]."""
    start_stream(conn, headers)
    role, *token_chunks, finish = token_events(tokens)
    conn.write(chunked(role))
    for data in token_chunks:
        conn.write(chunked(data))
        conn.token_chunks += 1
    count = len(tokens) if completion_tokens is None else completion_tokens
    conn.write(chunked(finish + event(usage_chunk(9, count)) + DONE) + LAST_CHUNK)


TOKENS = ("Shipping", " usually", " takes", " three", " to", " five", " business", " days", ".")
