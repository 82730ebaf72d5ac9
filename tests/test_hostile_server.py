"""The hostile server writes exactly what each scenario's name says, stops when the client goes, and
``close()`` leaves nothing running. Read with a raw socket, bounded in bytes and seconds."""

from __future__ import annotations

import base64
import gzip
import json
import os
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from tests.hostile_client import RawClient, chat_body, payloads, sse_data
from tests.hostile_echo import ECHO_PLACES, key_forms
from tests.hostile_scenarios import SCENARIOS, scenario
from tests.hostile_server import HostileServer, Served
from tests.rss import run_measuring_rss, vm_hwm_mib

KEY = "sk-test/Ab+Cd=="  # its raw, base64 and URL-encoded forms all differ


def serve(name: str, **params: Any) -> HostileServer:
    return HostileServer(scenario(name, **params))


def served_one(server: HostileServer, timeout_s: float = 5.0) -> Served:
    return server.wait_served(1, timeout_s)[0]


def tokens(events: list[Any]) -> list[str]:
    return [c["delta"]["content"] for e in events for c in e["choices"] if "content" in c["delta"]][1:]


def test_every_scenario_builds_with_its_defaults() -> None:
    assert len(SCENARIOS) == 20
    for name in SCENARIOS:
        assert callable(scenario(name))


def test_normal_stream_records_request_and_bytes_match_the_wire() -> None:
    with serve("normal") as server, RawClient(server) as client:
        client.send(chat_body(), key=KEY, X_Trace="t1")
        head, body = client.response()
        events = payloads(body)
        client.send(chat_body(stream=False))
        second, answer = client.response()
        done = server.wait_served(2)
    assert head.status == 200 and head.headers["content-type"].startswith("text/event-stream")
    assert "".join(tokens(events)) == "Shipping usually takes three to five business days."
    assert events[-1]["usage"]["completion_tokens"] == 9 and sse_data(body)[-1] == "[DONE]"
    assert json.loads(answer)["choices"][0]["message"]["role"] == "assistant" and second.status == 200
    request = done[0].request
    assert (request.method, request.path, request.api_key) == ("POST", "/v1/chat/completions", KEY)
    assert request.header("x-trace") == "t1" and request.json() == chat_body()
    assert done[0].token_chunks == 9 and not done[0].client_closed
    assert done[0].bytes_written + done[1].bytes_written == client.received
    assert server.connections_accepted == 1 and {d.request.connection_id for d in done} == {1}


def test_endless_headers_never_end_and_stop_when_the_client_closes() -> None:
    with serve("endless_headers") as server:
        with RawClient(server) as client:
            client.send()
            assert client.read_until(b"\r\n\r\n", 4_000_000) is None  # 4 MB of headers, no blank line
            assert client.buffer.startswith(b"HTTP/1.1 200 OK\r\n")
        record = served_one(server)
    assert record.client_closed and 4_000_000 <= record.bytes_written < 40_000_000


def test_endless_headers_has_a_byte_bound() -> None:
    with serve("endless_headers", max_bytes=200_000) as server, RawClient(server) as client:
        client.send()
        raw = client.read_to_eof(1_000_000)
    assert 200_000 <= len(raw) < 300_000 and b"\r\n\r\n" not in raw


def test_huge_error_body_is_exactly_its_size_and_valid_json() -> None:
    with serve("huge_error_body", size=3_000_000, status=503) as server, RawClient(server) as client:
        client.send()
        head, body = client.response()
    assert head.status == 503 and int(head.headers["content-length"]) == len(body) == 3_000_000
    assert json.loads(body)["error"]["message"].startswith("huge error body: xxx")


def test_huge_error_body_stops_writing_when_the_client_closes() -> None:
    with serve("huge_error_body") as server:  # 200 MB
        with RawClient(server) as client:
            client.send()
            assert client.head().headers["content-length"] == "200000000"
            client.read_exact(1_000_000)
        record = served_one(server)
    assert record.client_closed and record.bytes_written < 30_000_000


def test_huge_sse_line_is_one_line_of_its_size() -> None:
    with serve("huge_sse_line", size=2_000_000) as server, RawClient(server) as client:
        client.send()
        _, body = client.response()
    line, _, rest = body.partition(b"\n")
    assert len(line) == 2_000_000 and line.startswith(b"data: {")
    assert len(json.loads(line[6:])["choices"][0]["delta"]["content"]) > 1_999_000
    assert rest == b"\ndata: [DONE]\n\n"


def test_flood_with_a_count_is_a_valid_stream() -> None:
    with serve("flood", chunks=5_000) as server, RawClient(server) as client:
        client.send()
        _, body = client.response()
        record = served_one(server)
    events = payloads(body)
    assert len(tokens(events)) == 5_000 and events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["usage"]["completion_tokens"] == 5_000 == record.token_chunks


def test_flood_until_closed_stops_when_the_client_closes() -> None:
    with serve("flood") as server:
        with RawClient(server) as client:
            client.send()
            client.head()
            client.read_exact(3_000_000)
        record = served_one(server)
    assert record.client_closed and record.token_chunks > 3_000_000 // 300
    assert record.bytes_written < 40_000_000


def test_many_chunks_and_many_choices() -> None:
    with serve("many_chunks", n=20_000) as server, RawClient(server) as client:
        client.send()
        events = payloads(client.response()[1])
    assert len(tokens(events)) == 20_000 and events[-1]["usage"]["completion_tokens"] == 20_000
    with serve("many_choices", n=2_000) as server, RawClient(server) as client:
        client.send()
        events = payloads(client.response()[1])
        record = served_one(server)
    big = events[1]["choices"]
    assert len(big) == 2_000 and [c["index"] for c in big] == list(range(2_000))
    assert record.notes == {"choices": 2_000} and record.token_chunks == 1


@pytest.mark.parametrize("value", [2**63 - 1, -5, 1.5, "12"])
def test_usage_numbers_end_with_the_value_as_given(value: Any) -> None:
    with serve("usage_numbers", completion_tokens=value) as server, RawClient(server) as client:
        client.send()
        _, body = client.response()
    usage = payloads(body)[-1]["usage"]
    assert usage["completion_tokens"] == value and type(usage["completion_tokens"]) is type(value)
    assert f'"completion_tokens":{json.dumps(value)}'.encode() in body


def test_interim_1xx_then_a_normal_answer_and_the_connection_is_reused() -> None:
    with serve("interim_1xx") as server, RawClient(server) as client:
        client.send()
        heads = [client.head(), client.head(), client.head()]
        first = client.body(heads[2])
        client.send()
        again = [client.head(), client.head(), client.head()]
        second = client.body(again[2])
        done = server.wait_served(2)
    assert [h.status for h in heads] == [100, 103, 200] and "rel=preload" in heads[1].headers["link"]
    assert [h.status for h in again] == [100, 103, 200]
    assert len(tokens(payloads(first))) == len(tokens(payloads(second))) == 9
    assert server.connections_accepted == 1 and len(done) == 2


@pytest.mark.parametrize("value", ["3600", "inf", "1e308"])
def test_retry_after_then_normal_answers(value: str) -> None:
    with serve("retry_after", value=value) as server, RawClient(server) as client:
        client.send()
        limited, error = client.response()
        client.send()
        ok, body = client.response()
        done = server.wait_served(2)
    assert limited.status == 429 and limited.headers["retry-after"] == value
    assert json.loads(error)["error"]["code"] == "rate_limit_exceeded"
    assert ok.status == 200 and sse_data(body)[-1] == "[DONE]"
    assert [d.notes for d in done] == [{"rate_limited": 1}, {}]


def depth_of(text: bytes) -> int:
    deepest = level = 0
    for byte in text:  # the body holds no strings with brackets, so counting brackets is exact
        level += byte in b"[{"
        level -= byte in b"]}"
        deepest = max(deepest, level)
    return deepest


def test_deep_json_error_is_nested_exactly_as_deep() -> None:
    with serve("deep_json_error", depth=600) as server, RawClient(server) as client:
        client.send()
        head, body = client.response()
    assert head.status == 400 and depth_of(body) == 600
    assert json.loads(body)["error"]["message"] == "nested too deep"


def test_data_after_done() -> None:
    with serve("data_after_done") as server, RawClient(server) as client:
        client.send()
        data = sse_data(client.response()[1])
        record = served_one(server)
    after = [json.loads(value) for value in data[data.index("[DONE]") + 1 :]]
    assert len(after) == 6 and after[-1]["usage"]["completion_tokens"] == 999
    assert record.token_chunks == 9 and record.notes == {"after_done_chunks": 5}


def test_json_error_200_and_gzip_error_body() -> None:
    with serve("json_error_200") as server, RawClient(server) as client:
        client.send()
        head, body = client.response()
    assert head.status == 200 and head.headers["content-type"] == "application/json"
    assert "error while processing" in json.loads(body)["error"]["message"]
    with serve("gzip_error_body") as server, RawClient(server) as client:
        client.send(Accept_Encoding="identity")
        head, body = client.response()
    assert head.status == 500 and head.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["error"]["message"] == "The gzip-encoded server error message."


def test_comments_only_then_close() -> None:
    with serve("comments_only_then_close", count=4, interval_s=0.0) as server, RawClient(server) as client:
        client.send()
        head, body = client.response()
    assert head.headers["connection"] == "close" and "content-length" not in head.headers
    assert body == b": ping\n\n" * 4
    with (
        serve("comments_only_then_close", count=3, interval_s=0.0, framed=True) as server,
        RawClient(server) as c,
    ):
        c.send()
        assert c.response()[1] == b": ping\n\n" * 3
        c.send()  # a clean framed end keeps the connection
        assert c.response()[1] == b": ping\n\n" * 3


def assert_stops_soon_after_close(server: HostileServer, client: RawClient, lag_s: float = 2.0) -> Served:
    closed_at = time.monotonic()
    client.close()
    record = served_one(server, timeout_s=lag_s)
    assert record.client_closed and time.monotonic() - closed_at < lag_s
    return record


def test_keepalive_forever_sends_only_comments_until_the_client_closes() -> None:
    with serve("keepalive_forever", interval_s=0.05) as server:
        client = RawClient(server)
        client.send()
        client.head()
        time.sleep(0.4)
        client.sock.settimeout(0.2)
        seen = client.sock.recv(100_000)  # 0.4 s of comments are waiting in the socket buffer
        assert seen.count(b": keep-alive\n\n") >= 3 and b"data:" not in seen
        record = assert_stops_soon_after_close(server, client)
    assert record.notes["comments"] >= 3


def test_stall_after_headers_writes_nothing_until_the_client_closes() -> None:
    with serve("stall_after_headers") as server:
        client = RawClient(server)
        client.send()
        assert client.head().status == 200
        client.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.sock.recv(1)
        assert_stops_soon_after_close(server, client)


@pytest.mark.parametrize("place", ECHO_PLACES)
def test_echo_key_puts_the_key_where_it_says(place: str) -> None:
    raw, b64, url = key_forms(KEY)
    assert len({raw, b64, url}) == 3
    with serve("echo_key", place=place) as server, RawClient(server) as client:
        client.send(key=KEY)
        head, body = client.response()
    if place == "stream_error":
        message = json.loads(sse_data(body)[-1])["error"]["message"]
    elif place == "error_object":
        message = json.loads(body)["error"]["message"]
        assert head.status == 400
    elif place == "request_id_header":
        message = head.headers["x-request-id"]
        assert KEY not in body.decode()
    elif place == "finish_reason":
        message = payloads(body)[-1]["choices"][0]["finish_reason"]
    else:
        message = json.loads(body)["error"]["message"]
        assert head.status == 401 and raw not in message
        assert base64.b64decode(message.rsplit(" ", 1)[1]).decode() == KEY
        return
    assert raw in message and b64 in message and url in message


def test_embeddings_matrix_and_flat_embeddings() -> None:
    request = {"model": "e", "input": ["a", "b", "c"]}
    with serve("embeddings_matrix", tokens=5, dims=4) as server, RawClient(server) as client:
        client.send(request, path="/v1/embeddings")
        data = json.loads(client.response()[1])["data"]
    assert [d["index"] for d in data] == [0, 1, 2]
    assert all(len(d["embedding"]) == 5 and all(len(row) == 4 for row in d["embedding"]) for d in data)
    with serve("normal") as server, RawClient(server) as client:
        client.send(request, path="/v1/embeddings")
        flat = json.loads(client.response()[1])["data"]
    assert all(isinstance(value, float) for d in flat for value in d["embedding"])


def test_no_usage_empty_deltas_like_llama_cpp_python() -> None:
    with serve("no_usage_empty_deltas", tokens=64, empty=25) as server, RawClient(server) as client:
        client.send()
        _, body = client.response()
        record = served_one(server)
    events = payloads(body)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant"}
    texts = [e["choices"][0]["delta"]["content"] for e in events[1:-1]]
    assert len(texts) == 64 and texts.count("") == 25
    assert events[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert b"usage" not in body and sse_data(body)[-1] == "[DONE]"
    assert record.token_chunks == 64 and record.notes == {"empty_chunks": 25}


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    yield server_context, client_context


def test_tls_serves_the_same_stream_and_records_failed_handshakes(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls
    with HostileServer(scenario("normal"), ssl_context=server_context) as server:
        assert server.url.startswith("https://127.0.0.1:")
        with RawClient(server, tls=client_context) as client:
            client.send(key=KEY)
            assert len(tokens(payloads(client.response()[1]))) == 9
        with pytest.raises(ssl.SSLCertVerificationError):
            RawClient(server, tls=ssl.create_default_context())  # the system store does not trust it
        deadline = time.monotonic() + 5
        while not server.tls_errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.tls_errors) == 1 and len(server.requests) == 1


def test_close_ends_every_thread_even_with_blocked_writers(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    before = set(threading.enumerate())
    for context in (None, tls[0]):
        server = HostileServer(scenario("flood"), ssl_context=context)
        stalled = HostileServer(scenario("stall_after_headers"))
        clients = [RawClient(server, tls=tls[1] if context else None), RawClient(stalled)]
        for client in clients:
            client.send()  # nobody reads: the flood blocks in sendall once the socket buffers are full
        time.sleep(0.3)
        server.close()
        stalled.close()
        assert server.live_threads() == [] and stalled.live_threads() == []
        for client in clients:
            client.close()
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("hostile")]


ALLOCATE = "import time; block = b'x' * {mib} * 1024 * 1024; time.sleep(0.3)"


def test_rss_reports_the_child_peak_not_the_parents() -> None:
    ballast = b"y" * (120 * 1024 * 1024)  # the parent's RSS must not leak into the child's figure
    small = run_measuring_rss([sys.executable, "-c", "import time; time.sleep(0.2)"], timeout_s=20)
    big = run_measuring_rss([sys.executable, "-c", ALLOCATE.format(mib=80)], timeout_s=20)
    assert len(ballast) and (vm_hwm_mib(os.getpid()) or 0) > 120
    assert small.returncode == 0 and 2 < small.peak_rss_mib < 40
    assert big.returncode == 0 and 80 < big.peak_rss_mib < 80 + 40


def test_the_projects_client_reads_the_normal_scenario_and_counts_match(tmp_path: Any) -> None:
    from tests._support import TEST_LOCUSTFILES, headless, run_locust

    with serve("normal") as server:
        run = run_locust(
            TEST_LOCUSTFILES / "counting_chat.py", tmp_path, headless(server.url, 2, "2s"), timeout_s=60
        )
        served = server.served
    assert run.returncode == 0, run.stderr[-2000:]
    ok = [r for r in run.records if r["outcome"] == "success"]
    cut = [r for r in run.records if r["outcome"] != "success"]  # in flight when the run stopped
    assert len(ok) > 10 and {r["outcome"] for r in cut} <= {"cancelled"} and len(cut) <= 2
    assert len(ok) <= len(served) <= len(run.records) and server.connections_accepted == 2
    assert {r["output_tokens"] for r in ok} == {9} and {len(r["chunk_offsets_ms"]) for r in ok} == {9}
    assert {s.token_chunks for s in served if not s.client_closed} == {9}
