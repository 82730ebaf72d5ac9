"""The transport against servers that misbehave on purpose (issue 9), in process: each bound is a failure
of a clear kind, the server's message survives, no connection goes back to the pool with unread bytes,
and a flooding stream does not starve other greenlets. Real loopback servers, bounded in bytes and time."""

from __future__ import annotations

import time
from typing import Any

import gevent
import orjson
import pytest

from locust_aiapi import FailureKind, Outcome, RequestRecord, RetryPolicy, ttft_ms
from locust_aiapi._client import AIClient
from locust_aiapi._limits import MIB, Limits
from locust_aiapi._requests import ChatRequest, EmbeddingRequest
from locust_aiapi._transport import classify_exception, decoded
from locust_aiapi.dialects import OPENAI
from tests.client_pools import client_pool
from tests.hostile_process import served_by_child
from tests.hostile_scenarios import scenario
from tests.hostile_server import Conn, HostileServer, ReceivedRequest
from tests.hostile_wire import head


def client_for(limits: Limits | None = None, retry: RetryPolicy | None = None) -> AIClient:
    pool = client_pool(network_timeout=10.0, connection_timeout=5.0, concurrency=4)
    reported: list[RequestRecord] = []
    return AIClient(pool, {"Authorization": "Bearer k"}, OPENAI, retry or RetryPolicy(), reported.append,
                    limits=limits)  # fmt: skip


def chat(client: AIClient, server: HostileServer, stream: bool = True) -> RequestRecord:
    return chat_url(client, server.url, stream)


def chat_url(client: AIClient, url: str, stream: bool = True) -> RequestRecord:
    messages = [{"role": "user", "content": "hi"}]
    request = ChatRequest("chat", url + "/v1/chat/completions", "m", messages, stream, max_tokens=None)
    return client.chat(request).record


def failed(record: RequestRecord, kind: FailureKind) -> str:
    assert record.outcome is Outcome.FAILURE and record.failure_kind is kind, record.failure_message
    return record.failure_message or ""


def serve(name: str, **params: Any) -> HostileServer:
    return HostileServer(scenario(name, **params))


def test_endless_headers_fail_at_the_header_count_bound_and_the_connection_closes() -> None:
    with serve("endless_headers") as server:
        record = chat(client_for(), server)
        served = server.wait_served(1)[0]
    assert failed(record, FailureKind.PROTOCOL_ERROR) == "more than 100 response headers"
    assert served.client_closed and served.bytes_written < 40_000_000


def one_endless_header(request: ReceivedRequest, conn: Conn) -> None:
    conn.keep_alive = False
    conn.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
    for _ in range(10_000):  # 640 MB at most; the client stops reading after 64 KiB
        conn.write(b"h" * 65536)


def test_one_endless_header_line_fails_at_the_header_byte_bound() -> None:
    with HostileServer(one_endless_header) as server:
        record = chat(client_for(), server)
        served = server.wait_served(1)[0]
    assert failed(record, FailureKind.PROTOCOL_ERROR) == "response headers exceed 65536 bytes"
    assert served.client_closed and served.bytes_written < 40_000_000


def dripping_headers(request: ReceivedRequest, conn: Conn) -> None:
    conn.keep_alive = False
    conn.write(b"HTTP/1.1 200 OK\r\n")
    for number in range(100):
        conn.sleep(0.1)
        conn.write(b"X-Slow-%d: 1\r\n" % number)


def test_headers_that_drip_in_fail_at_the_header_time_bound() -> None:
    with HostileServer(dripping_headers) as server:
        began = time.monotonic()
        record = chat(client_for(Limits(header_time_s=0.5)), server)
    elapsed = time.monotonic() - began
    message = failed(record, FailureKind.TIMEOUT)
    assert message == "response headers not complete within 0.5 s of their first byte"
    assert 0.4 < elapsed < 3.0


def test_a_200_mb_error_body_keeps_the_message_reads_64_kib_and_closes_the_connection() -> None:
    with serve("huge_error_body", status=503) as server:
        client = client_for()
        first, second = chat(client, server), chat(client, server)
        served = server.wait_served(2)
    for record in (first, second):
        message = failed(record, FailureKind.SERVER_ERROR)
        assert message.startswith("HTTP 503: ") and "huge error body: xxx" in message
    assert all(s.client_closed and s.bytes_written < 30_000_000 for s in served)
    assert server.connections_accepted == 2  # a half-read connection is never reused


def sized_body(size: int) -> Any:
    def run(request: ReceivedRequest, conn: Conn) -> None:
        conn.write(head(200, [("Content-Type", "application/json"), ("Content-Length", str(size))]))
        for _ in range(size // 65536):
            conn.write(b" " * 65536)

    return run


def test_a_non_streamed_body_beyond_the_cap_is_response_too_large_and_not_read() -> None:
    with HostileServer(sized_body(300 * MIB)) as server:
        record = chat(client_for(Limits(max_body_bytes=4 * MIB)), server, stream=False)
        served = server.wait_served(1)[0]
    assert failed(record, FailureKind.RESPONSE_TOO_LARGE) == f"the response body exceeds {4 * MIB} bytes"
    assert served.client_closed and served.bytes_written < 40_000_000


def test_a_chunked_body_beyond_the_cap_stops_at_the_cap() -> None:
    with serve("huge_sse_line", size=20_000_000) as server:
        record = chat(client_for(Limits(max_body_bytes=2 * MIB)), server, stream=False)
        pool_request = EmbeddingRequest("embeddings", server.url + "/v1/embeddings", "e", ["a"])
        embedding = client_for(Limits(max_body_bytes=2 * MIB)).embed(pool_request).record
    failed(record, FailureKind.RESPONSE_TOO_LARGE)
    failed(embedding, FailureKind.RESPONSE_TOO_LARGE)


def test_interim_1xx_responses_are_skipped_and_the_connection_is_reused() -> None:
    with serve("interim_1xx") as server:
        client = client_for()
        records = [chat(client, server) for _ in range(5)] + [chat(client, server, stream=False)]
        served = server.wait_served(6)
    assert all(r.ok for r in records), [r.failure_message for r in records]
    assert [r.output_tokens for r in records] == [9] * 6
    assert server.connections_accepted == 1 and not any(s.client_closed for s in served)


def test_a_gzip_error_body_keeps_the_servers_message() -> None:
    with serve("gzip_error_body") as server:
        record = chat(client_for(), server)
    assert failed(record, FailureKind.SERVER_ERROR) == "HTTP 500: The gzip-encoded server error message."


def test_gzip_decoding_is_bounded() -> None:
    import gzip

    bomb = gzip.compress(b"x" * 50_000_000)
    assert len(decoded(bomb, "gzip", 65536)) == 65536
    assert decoded(b"not gzip", "gzip", 100) == b"not gzip"
    assert decoded(b"plain", None, 100) == b"plain"


def test_a_200_json_error_to_a_streamed_request_keeps_the_servers_message() -> None:
    with serve("json_error_200") as server:
        record = chat(client_for(), server)
    message = failed(record, FailureKind.STREAM_ERROR)  # the server's error, in the server's words
    assert message.startswith("error instead of a stream: ")
    assert "The server had an error while processing your request." in message


def test_keepalive_comments_are_no_progress_towards_the_first_token() -> None:
    with serve("keepalive_forever", interval_s=0.05) as server:
        began = time.monotonic()
        record = chat(client_for(Limits(ttft_timeout_s=0.6)), server)
        served = server.wait_served(1)[0]
    assert failed(record, FailureKind.TIMEOUT) == "no token within 0.6 s"
    assert 0.5 < time.monotonic() - began < 3.0 and served.notes["comments"] >= 5


def test_silence_before_the_headers_counts_towards_the_ttft_deadline() -> None:
    def silent(request: ReceivedRequest, conn: Conn) -> None:
        conn.keep_alive = False
        conn.sleep(30)

    with HostileServer(silent) as server:
        began = time.monotonic()
        record = chat(client_for(Limits(ttft_timeout_s=0.4)), server)
    assert failed(record, FailureKind.TIMEOUT) == "no token within 0.4 s"
    assert time.monotonic() - began < 3.0


def test_the_request_deadline_ends_a_stream_that_never_ends() -> None:
    with serve("flood") as server:
        began = time.monotonic()
        record = chat(client_for(Limits(request_timeout_s=0.8)), server)
    assert failed(record, FailureKind.TIMEOUT) == "request not complete within 0.8 s"
    assert 0.7 < time.monotonic() - began < 3.0
    assert record.token_chunk_times_s  # the tokens read so far are kept


def test_a_normal_stream_meets_no_bound() -> None:
    with serve("normal") as server:
        record = chat(client_for(Limits(ttft_timeout_s=5, request_timeout_s=5)), server)
    assert record.ok and record.output_tokens == 9, record.failure_message


def test_deep_json_error_keeps_its_status_and_is_not_retried() -> None:
    with serve("deep_json_error", depth=600) as server:
        record = chat(client_for(retry=RetryPolicy(max_retries=3, base_delay_s=0.01)), server)
        assert len(server.requests) == 1
    assert failed(record, FailureKind.CLIENT_ERROR).startswith("HTTP 400: ")
    assert record.attempts == 1


@pytest.mark.parametrize("error", [RecursionError("maximum recursion depth exceeded"), ValueError("bad")])
def test_a_parse_error_at_the_http_layer_is_a_protocol_error(error: BaseException) -> None:
    kind, _ = classify_exception(error)
    assert kind is FailureKind.PROTOCOL_ERROR
    assert not RetryPolicy(max_retries=3).should_retry(kind, 0)


@pytest.mark.parametrize("value", ["3600", "inf", "1e308"])
def test_retry_after_beyond_the_cap_does_not_park_the_user(value: str) -> None:
    retry = RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.3)
    with serve("retry_after", value=value) as server:
        began = time.monotonic()
        record = chat(client_for(retry=retry), server)
    assert record.ok and record.attempts == 2, record.failure_message
    assert time.monotonic() - began < 2.0


def test_a_flooding_stream_does_not_starve_other_greenlets() -> None:
    flood_client = client_for(Limits(request_timeout_s=3.0))
    normal_client = client_for()
    with served_by_child("flood", max_bytes=600_000_000) as flooding, serve("normal") as normal:
        began = time.monotonic()
        flood = gevent.spawn(chat_url, flood_client, flooding)
        gevent.sleep(0.3)  # the flood is running
        others = [chat(normal_client, normal) for _ in range(20)]
        elapsed = time.monotonic() - began
        flood_record = flood.get(timeout=60)
    assert all(r.ok for r in others) and elapsed < 2.5  # without yielding: after the flood, > 3 s
    assert max(ttft_ms(r) or 1e9 for r in others) < 250.0
    assert max(r.end_s for r in others) < flood_record.end_s
    assert failed(flood_record, FailureKind.TIMEOUT) == "request not complete within 3 s"
    assert len(flood_record.token_chunk_times_s) > 10_000  # it did flood


def test_a_whole_json_answer_to_a_streamed_request_is_a_protocol_error_quoting_it() -> None:
    from tests.hostile_wire import send_json

    answer = {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": "hi"}}]}
    body = orjson.dumps(answer)
    with HostileServer(lambda request, conn: send_json(conn, 200, body)) as server:
        record = chat(client_for(), server)
    message = failed(record, FailureKind.PROTOCOL_ERROR)
    assert message.startswith("HTTP 200 application/json, not a stream: ")


def _answering(status: int, *headers: tuple[str, str]) -> HostileServer:
    from tests.hostile_wire import error_body, send_json

    body = error_body("Overloaded", "overloaded_error")
    return HostileServer(lambda request, conn: send_json(conn, status, body, headers))


def test_a_dialects_own_status_kind_wins_anthropics_529_is_overloaded() -> None:
    from locust_aiapi.dialects import ANTHROPIC

    pool = client_pool(network_timeout=5.0, connection_timeout=5.0)
    client = AIClient(pool, {"x-api-key": "k"}, ANTHROPIC, RetryPolicy(), lambda record: None)
    with _answering(529) as server:
        messages = [{"role": "user", "content": "hi"}]
        request = ChatRequest("chat", server.url + "/v1/messages", "claude", messages, True, max_tokens=16)
        record = client.chat(request).record
    assert failed(record, FailureKind.OVERLOADED).startswith("HTTP 529: ")
    with _answering(529) as server:
        assert failed(chat(client_for(), server), FailureKind.SERVER_ERROR)  # OpenAI: a plain 5xx


def test_a_429s_retry_after_ms_is_finer_than_retry_after() -> None:
    with _answering(429, ("retry-after-ms", "250"), ("retry-after", "10")) as server:
        record = chat(client_for(), server)
    failed(record, FailureKind.RATE_LIMITED)
    assert record.retry_after_s == 0.25
