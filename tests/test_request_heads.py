"""A request head is built once per client, method, target and header set (``_request_heads``), and
what goes on the wire is byte for byte what geventhttpclient builds for each body: checked against
its own ``_build_request`` and on a real loopback connection (the body's length counts, a large body
that does not fit the socket's buffer at once arrives whole)."""

from __future__ import annotations

import socket
import threading
from time import perf_counter
from typing import Any

import pytest
from geventhttpclient.client import HTTPClient, HTTPClientPool

from locust_aiapi import _request_heads
from locust_aiapi._limits import Deadlines, Limits
from locust_aiapi._request_heads import MAX_KEPT, request_head, target
from locust_aiapi._transport import read_body, send_request

from .test_client_io import ScriptedServer

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
HEADERS = {"Authorization": "Bearer k", "Content-Type": "application/json", "Accept": "text/event-stream"}


def gevents_own(client: HTTPClient, method: str, uri: str, headers: Any, body: bytes) -> bytes:
    head = client._build_request(method, uri, body=body, headers=dict(headers), chunked=False)
    return head.encode("latin-1")


@pytest.mark.parametrize(
    ("method", "headers", "body"),
    [
        ("POST", HEADERS, b'{"model":"m"}'),
        ("POST", HEADERS, b""),
        ("POST", HEADERS, b"x" * 100_000),
        ("POST", {}, b"{}"),
        ("GET", HEADERS, b""),  # no Content-Length at all: nothing of ours to end the head with
        ("POST", {**HEADERS, "content-length": "13"}, b'{"model":"m"}'),  # the caller's own, kept
        ("POST", {**HEADERS, "X-Tags": ["a", "b"]}, b"{}"),  # not hashable: built each time
        ("POST", {"Host": "api.example.com"}, b"{}"),
    ],
)
def test_heads_are_geventhttpclients_own(method: str, headers: Any, body: bytes) -> None:
    client = HTTPClient("127.0.0.1", 8000)
    for _ in range(2):  # built, then kept
        assert request_head(client, method, "/v1/chat/completions", headers, body) == gevents_own(
            client, method, "/v1/chat/completions", headers, body
        )


def test_one_head_is_kept_for_every_body_length() -> None:
    client = HTTPClient("127.0.0.1", 8000)
    for length in (0, 1, 9, 10, 12345):
        body = b"b" * length
        assert request_head(client, "POST", "/v1/embeddings", HEADERS, body) == gevents_own(
            client, "POST", "/v1/embeddings", HEADERS, body
        )
    assert len(client.__dict__[_request_heads._HEADS]) == 1


def test_what_else_a_head_depends_on_is_never_taken_from_a_kept_one() -> None:
    """Equal values of other types (1 == True == 1.0), the client's own default headers and version
    changing, a non-body method whose last header merely ends like a Content-Length line."""
    client = HTTPClient("127.0.0.1", 8000)
    steps: list[tuple[str, dict[str, Any], bytes]] = [
        ("POST", {"X-Flag": 1}, b"{}"),
        ("POST", {"X-Flag": True}, b"{}"),
        ("POST", {"X-Flag": 1.0}, b"{}"),
        ("POST", {"A": "b"}, b"{}"),
        ("POST", {"A": "b"}, b"{}"),  # after a default header is added (below)
        ("POST", {"A": "b"}, b"{}"),  # after the version changes
        ("DELETE", {"Host": "api.example", "X-Original-Content-Length": "0"}, b""),
        ("DELETE", {"Host": "api.example", "X-Original-Content-Length": "0"}, b"hello"),
    ]
    for index, (method, headers, body) in enumerate(steps):
        if index == 4:
            client.default_headers["X-Tenant"] = "t2"
        if index == 5:
            client.version = "HTTP/1.0"
        assert request_head(client, method, "/v1/x", headers, body) == gevents_own(
            client, method, "/v1/x", headers, body
        ), steps[index]


def test_kept_heads_are_bounded_per_client() -> None:
    client = HTTPClient("127.0.0.1", 8000)
    for index in range(3 * MAX_KEPT + 1):
        headers = {**HEADERS, "X-Run": str(index)}
        assert request_head(client, "POST", "/v1/chat/completions", headers, b"{}") == gevents_own(
            client, "POST", "/v1/chat/completions", headers, b"{}"
        )
        assert len(client.__dict__[_request_heads._HEADS]) <= MAX_KEPT


def test_a_head_that_fails_its_checks_fails_every_time() -> None:
    client = HTTPClient("127.0.0.1", 8000)
    for _ in range(2):
        with pytest.raises(ValueError, match="invalid value for header field"):
            request_head(client, "POST", "/v1/chat/completions", {"Authorization": "Bearer k\r\nX: y"}, b"")
    assert not client.__dict__[_request_heads._HEADS]


def test_targets_are_parsed_once_and_quoted() -> None:
    parsed, uri = target("http://127.0.0.1:8000/v1/chat completions?x=1")
    assert (parsed.host, parsed.port, uri) == ("127.0.0.1", 8000, "/v1/chat%20completions?x=1")
    assert target("http://127.0.0.1:8000/v1/chat completions?x=1")[0] is parsed


class CapturingServer:
    """Keep-alive HTTP/1.1 on loopback: records each request's raw head and body, answers ``{}``."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[tuple[bytes, bytes]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while (request := ScriptedServer._read_request(conn)) is not None:  # one at a time
                head, _, body = request.partition(b"\r\n\r\n")
                self.requests.append((head + b"\r\n\r\n", body))
                conn.sendall(ANSWER)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def test_what_goes_on_the_wire() -> None:
    server = CapturingServer()
    pool = HTTPClientPool(network_timeout=10, connection_timeout=10, concurrency=1)
    url = server.url + "/v1/chat/completions"
    bodies = [b'{"model":"m"}', b"", b"y" * 12_000, b"z" * (8 << 20)]  # the last: sent in several writes
    try:
        for body in bodies:
            deadlines = Deadlines(Limits(), perf_counter(), first_token=False)
            response = send_request(pool, url, body, HEADERS, deadlines)
            assert response.status_code == 200
            assert read_body(response, deadlines, 100) == (b"{}", False)
            response.release()
    finally:
        pool.close()
        server.close()
    client = HTTPClient.from_url(url)
    assert [body for _, body in server.requests] == bodies
    for (head, _), body in zip(server.requests, bodies, strict=True):
        assert head == gevents_own(client, "POST", "/v1/chat/completions", HEADERS, body)
