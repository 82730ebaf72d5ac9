"""The only module that touches sockets: send one request, hand on body bytes as they arrive.

geventhttpclient's own ``read(n)`` keeps reading until ``n`` bytes are buffered, which would
hold a streamed token back until later ones arrive. :class:`BodyReader` instead returns
whatever the last ``recv`` produced, so every chunk is timestamped when it actually arrives.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import gevent
import gevent.monkey
from geventhttpclient.client import HTTPClientPool
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from geventhttpclient.url import URL

from ._records import FailureKind

__all__ = ["BodyReader", "Response", "classify_exception", "join_url", "read_all", "send_request"]

RECV_SIZE = 65536


class Response(Protocol):
    """The parts of geventhttpclient's ``HTTPSocketPoolResponse`` this package uses."""

    @property
    def status_code(self) -> int: ...

    @property
    def message_complete(self) -> bool: ...

    def get(self, key: str, default: str | None = None) -> Any: ...

    def feed(self, data: bytes) -> None: ...

    def release(self) -> None: ...


def join_url(host: str, path: str) -> str:
    """``host`` + ``path``, accepting a host given with or without a trailing ``/v1``.

    Users copy base URLs such as ``https://api.openai.com/v1`` from SDK docs; joining that
    with ``/v1/chat/completions`` must not produce ``/v1/v1/...``.
    """
    if path.startswith(("http://", "https://")):
        return path
    base = host.rstrip("/")
    if not path.startswith("/"):
        path = "/" + path
    last_segment = urlsplit(base).path.rpartition("/")[2]
    if last_segment and path.startswith(f"/{last_segment}/"):
        path = path[len(last_segment) + 1 :]
    return base + path


def send_request(
    pool: HTTPClientPool, url: str, body: bytes, headers: Mapping[str, str], method: str = "POST"
) -> Response:
    """Send the request and return once the response headers have arrived."""
    parsed = URL(url)
    client = pool.get_client(parsed)
    _tune_connection_pool(client._connection_pool)
    uri = getattr(parsed, "quoted_uri", parsed.request_uri)
    response: Response = client.request(method, uri, body=body, headers=dict(headers))
    return response


_unpatched_select = gevent.monkey.get_original("select", "select")
_unpatched_getaddrinfo = gevent.monkey.get_original("socket", "getaddrinfo")


def _tune_connection_pool(connections: Any) -> None:
    """Keep geventhttpclient from yielding to the hub between our start stamp and the send.

    Each yield puts the request behind every other ready greenlet, and that wait would be
    reported as server latency: measured 5-15 ms for the first request of each of 20 users
    (thread-pool DNS for an IP literal) and ~10 ms at p99 for keep-alive reuse (see below).
    """
    if connections.__dict__.get("_is_socket_alive") is _socket_is_idle:
        return
    connections._is_socket_alive = _socket_is_idle
    host = str(connections._connection_host).strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: keep gevent's cooperative resolver, a DNS lookup may take a while
    family = socket.AF_INET if connections.disable_ipv6 else 0
    info = _unpatched_getaddrinfo(
        host, connections._connection_port, family, socket.SOCK_STREAM, socket.SOL_TCP, socket.AI_NUMERICHOST
    )
    connections._resolve = lambda: info


def _socket_is_idle(sock: Any) -> bool:
    """geventhttpclient's check that a pooled keep-alive socket is still usable, minus the yield.

    Its own check calls gevent's ``select(..., 0)``, which also yields to the hub; under load the
    request then waits behind every other greenlet (p99 ~10 ms at 20 users) after its start was
    stamped, and that wait would be reported as server latency. A zero-timeout poll of one
    descriptor never blocks, so the unpatched ``select`` is safe here.
    """
    try:
        if sock.fileno() < 0:
            return False
        readable, _, _ = _unpatched_select([sock], [], [], 0.0)
        return not readable
    except (OSError, ValueError):
        return False


class BodyReader:
    """Reads one response body as it arrives, with one idle timer for the whole body.

    gevent arms and disarms a timer on every blocking ``recv`` of a socket that has a timeout;
    at one recv per streamed chunk that was ~18 % of the load generator's CPU. Here the socket
    waits without a timeout and a single timer, re-armed only when it fires, throws
    ``socket.timeout`` into the reading greenlet once nothing has arrived for the socket's
    timeout (``network_timeout``).
    """

    __slots__ = ("_greenlet", "_idle_s", "_last_s", "_response", "_timer")

    def __init__(self, response: Response) -> None:
        self._response = response
        sock = response._sock  # type: ignore[attr-defined]
        self._idle_s: float | None = sock.gettimeout() if sock is not None else None
        self._last_s = time.perf_counter()
        self._greenlet = gevent.getcurrent()
        self._timer: Any = None
        if self._idle_s:
            self._arm(self._idle_s)

    def _arm(self, after_s: float) -> None:
        self._timer = gevent.get_hub().loop.timer(after_s)
        self._timer.start(self._on_timer)

    def _on_timer(self) -> None:
        assert self._idle_s is not None
        self._timer.close()
        idle_s = time.perf_counter() - self._last_s
        if idle_s >= self._idle_s:
            self._timer = None
            self._greenlet.throw(TimeoutError("timed out"))
        else:
            self._arm(self._idle_s - idle_s)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None

    def read(self) -> bytes:
        """The body bytes available now, waiting only when there are none; b"" at the end."""
        response = self._response
        buffer: bytearray = response._body_buffer  # type: ignore[attr-defined]
        while not buffer:
            sock = response._sock  # type: ignore[attr-defined]
            if response.message_complete or sock is None:
                return b""
            data = self._recv(sock)
            if data:
                response.feed(data)
            else:
                _feed_eof(response)
        chunk = bytes(buffer)
        del buffer[:]
        return chunk

    def _recv(self, sock: Any) -> bytes:
        timeout = self._idle_s
        if timeout is None:
            return bytes(sock.recv(RECV_SIZE))
        sock.settimeout(None)  # our timer guards the wait; restored before a pool can reuse it
        try:
            data = bytes(sock.recv(RECV_SIZE))
        finally:
            sock.settimeout(timeout)
        self._last_s = time.perf_counter()
        return data


def _feed_eof(response: Response) -> None:
    """The peer closed: that ends a read-until-close body, and breaks any other."""
    with contextlib.suppress(HTTPParseError):
        response.feed(b"")
    if not response.message_complete:
        response.release()
        raise HTTPConnectionClosed("connection closed before the end of the response body")


def read_all(response: Response) -> bytes:
    reader = BodyReader(response)
    parts: list[bytes] = []
    try:
        while chunk := reader.read():
            parts.append(chunk)
    finally:
        reader.close()
    return b"".join(parts)


_TIMEOUTS: tuple[type[BaseException], ...] = (socket.timeout, TimeoutError, gevent.Timeout)


# the peer closed the TLS connection: a connection problem (retryable), not a trust problem
_TLS_CLOSED = (ssl.SSLEOFError, ssl.SSLZeroReturnError)


def _tls_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    reason = str(exc.reason or exc).lower().replace("_", " ")
    return f"TLS error: {reason}"


def classify_exception(exc: BaseException) -> tuple[FailureKind, str]:
    """Map an I/O exception to a failure kind and a short, stable message."""
    if isinstance(exc, _TIMEOUTS):
        return FailureKind.TIMEOUT, "timed out"
    if isinstance(exc, HTTPConnectionClosed):
        return FailureKind.CONNECTION_ERROR, str(exc) or "connection closed"
    if isinstance(exc, HTTPParseError):
        return FailureKind.PROTOCOL_ERROR, f"invalid HTTP response: {exc}"
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, _TLS_CLOSED):
        return FailureKind.TLS_ERROR, _tls_reason(exc)
    if isinstance(exc, ConnectionRefusedError):
        return FailureKind.CONNECTION_ERROR, "connection refused"
    if isinstance(exc, ConnectionResetError):
        return FailureKind.CONNECTION_ERROR, "connection reset by peer"
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        return FailureKind.CONNECTION_ERROR, f"{name}: {exc.strerror or exc}"
    return FailureKind.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}"
