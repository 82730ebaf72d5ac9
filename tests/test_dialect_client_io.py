"""Dialect hardening seen through the real I/O loop: scripted loopback servers, real sockets."""

from __future__ import annotations

import gevent
import orjson

from locust_aiapi import FailureKind, Outcome, TokenSource
from locust_aiapi._client import ChatRequest, EmbeddingRequest

from .test_client_io import (
    END,
    STREAM_HEAD,
    chat,
    chunked,
    delta,
    make_client,
    plain,
    serve,
    sse,
)

# the loopback server of test_client_io, found by pytest under its name
FIXTURES = (serve,)

ROLE = sse({"model": "served-7b", "choices": [{"index": 0, "delta": {"role": "assistant"}}]})


def test_a_stream_cut_mid_way_keeps_ttft_tokens_and_text(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = serve([(0, STREAM_HEAD + chunked(ROLE + delta("par") + delta("tial"))), (0.05, b"")])
    client, _ = make_client()
    request = ChatRequest(
        "chat", url + "/v1/chat/completions", "asked", [{"role": "user", "content": "x"}], True
    )
    result = client.chat(request)
    record = result.record
    assert record.failure_kind is FailureKind.CONNECTION_ERROR
    assert result.text == "partial"
    assert record.first_token_s is not None and record.last_token_s is not None
    assert record.output_tokens == 2 and record.output_tokens_source is TokenSource.COUNTED
    assert record.served_model == "served-7b" and record.model == "asked"


def test_a_cancelled_stream_keeps_what_it_measured(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = serve([(0, STREAM_HEAD + chunked(ROLE + delta("a"))), (30, END)])
    client, reported = make_client()
    worker = gevent.spawn(chat, client, url)
    gevent.sleep(0.3)  # the token is sent at once; the rest would take 30 s
    worker.kill(block=True, timeout=2)
    (record,) = reported
    assert record.outcome is Outcome.CANCELLED
    assert record.first_token_s is not None and record.output_tokens == 1
    assert record.served_model == "served-7b"


def test_a_json_error_answering_a_stream_keeps_the_server_message(serve) -> None:  # type: ignore[no-untyped-def]
    body = orjson.dumps({"error": {"message": "model is loading", "type": "unavailable"}})
    url, _ = serve([(0, plain("200 OK", body))])
    client, _ = make_client()
    record = chat(client, url)
    assert record.failure_kind is FailureKind.STREAM_ERROR
    assert record.failure_message == "error instead of a stream: model is loading"


def test_an_overlong_line_fails_fast_and_the_connection_is_not_reused(serve) -> None:  # type: ignore[no-untyped-def]
    endless_line = chunked(b"data: " + b"x" * 60000)
    script = [(0, STREAM_HEAD + chunked(ROLE + delta("a")))] + [(0, endless_line)] * 40 + [(0, END)]
    good = [(0, STREAM_HEAD + chunked(delta("ok", "stop") + b"data: [DONE]\n\n") + END)]
    url, server = serve(script, good)
    client, _ = make_client()
    record = chat(client, url)
    assert record.failure_kind is FailureKind.RESPONSE_TOO_LARGE
    assert record.failure_message == "an SSE line is longer than 1048576 bytes"
    assert record.output_tokens == 1
    assert chat(client, url).ok  # a fresh connection: no bytes of the long line left over
    assert len(server.requests) == 2


def test_an_absurd_usage_is_a_protocol_error(serve) -> None:  # type: ignore[no-untyped-def]
    usage = sse({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2**63 - 1}})
    stream = ROLE + delta("a", "stop") + usage + b"data: [DONE]\n\n"
    url, _ = serve([(0, STREAM_HEAD + chunked(stream) + END)])
    client, _ = make_client()
    record = chat(client, url)
    assert record.failure_kind is FailureKind.PROTOCOL_ERROR
    assert record.output_tokens == 1  # counted, never the server's 2**63 - 1


def test_embeddings_come_from_the_dialect_with_the_served_model(serve) -> None:  # type: ignore[no-untyped-def]
    matrix = orjson.dumps({"model": "bge", "data": [{"index": 0, "embedding": [[0.1, 0.2], [0.3, 0.4]]}]})
    flat = orjson.dumps({"model": "bge", "data": [{"index": 0, "embedding": [0.1, 0.2]}]})
    url, _ = serve([(0, plain("200 OK", matrix))], [(0, plain("200 OK", flat))])
    client, _ = make_client()
    request = EmbeddingRequest("embed", url + "/v1/embeddings", "asked", "text")
    failed = client.embed(request).record
    assert failed.failure_kind is FailureKind.INVALID_RESPONSE
    assert (
        failed.failure_message
        == "embedding 0 is not a flat list of numbers (nested lists, strings, bools or null)"
    )
    result = client.embed(request)
    assert result.ok and result.vectors == [[0.1, 0.2]] and result.record.served_model == "bge"
