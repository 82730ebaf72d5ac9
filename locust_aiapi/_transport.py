"""Socket code: send one request, read a response body whole or as it arrives.

The body as it arrives is :class:`~locust_aiapi._body_reader.BodyReader` (its own module: it is the
per-chunk hot path).

Nothing a server sends is trusted: headers are read by our own loop under the bounds of
:class:`~locust_aiapi._limits.Limits`, and every read loop yields to other greenlets while a
server keeps the socket full (:class:`~locust_aiapi._head.Pacer`).
"""

from __future__ import annotations

import errno
import functools
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import gevent.socket
from geventhttpclient.client import HTTPClientPool

from ._body_reader import BodyReader, Response
from ._head import BoundedResponse, tune_connection_pool
from ._io_errors import classify_exception
from ._limits import Deadlines, ResponseTooLarge
from ._request_heads import request_head, target
from ._rx_stamps import enable_rx_stamps

_GeventSocket = gevent.socket.socket

__all__ = [
    "BodyReader",
    "Response",
    "classify_exception",
    "decoded",
    "join_url",
    "read_body",
    "read_limited",
    "send_request",
]


@functools.lru_cache(maxsize=512)  # once per host and path, not per request
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
    pool: HTTPClientPool,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    deadlines: Deadlines,
    method: str = "POST",
) -> Response:
    """Send the request and return once the final (non-1xx) response headers have arrived.

    geventhttpclient's ``request`` reads headers without a bound on size, count or time, so the
    request is written here and the headers are read by :class:`~locust_aiapi._head.BoundedResponse`. Like
    geventhttpclient, a POST is never re-sent on another connection.
    """
    parsed, uri = target(url)
    client = pool.get_client(parsed)
    connections = client._connection_pool
    tune_connection_pool(connections)
    head = request_head(client, method, uri, headers, body)
    sock = connections.get_socket()
    enable_rx_stamps(sock)  # before the answer can arrive: a segment queued unstamped stays unstamped
    try:
        _send_all(sock, head + body)
    except OSError as exc:
        if exc.errno not in (errno.ECONNRESET, errno.EPIPE):
            connections.release_socket(sock)
            raise
        # the server may have answered (e.g. 413) before closing: read that answer
    return BoundedResponse(sock, connections, deadlines, method=method, headers_type=client.headers_type)


def _send_all(sock: Any, data: bytes | memoryview) -> None:
    """``sock.sendall(data)``; over a gevent socket, first the non-blocking send it would make after
    four Python calls and a ``getsockopt``: a request nearly always fits the kernel's buffer. What is
    left, and any error of that send (gevent's own retries some, e.g. EPROTOTYPE on macOS), go to
    gevent's ``sendall``."""
    if type(sock) is _GeventSocket:
        try:
            sent = sock._sock.send(data)
        except OSError:
            sent = 0
        if sent == len(data):
            return
        data = memoryview(data)[sent:]
    sock.sendall(data)


def read_body(response: Response, deadlines: Deadlines, max_bytes: int) -> tuple[bytes, bool]:
    """The body, or its first ``max_bytes`` and True when it is longer (the rest is never read).

    A connection whose body was not read to the end is closed by ``release()``, never pooled.
    """
    reader = BodyReader(response, deadlines)
    parts: list[bytes] = []
    size = 0
    try:
        while chunk := reader.read():
            parts.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                return b"".join(parts)[:max_bytes], True
    finally:
        reader.close()
    return b"".join(parts), False


def _content_length(response: Response) -> int | None:
    value = response.get("content-length")
    try:
        return int(value) if isinstance(value, str) else None
    except ValueError:
        return None


def read_limited(response: Response, deadlines: Deadlines, max_bytes: int, what: str) -> bytes:
    """The whole body, or :class:`ResponseTooLarge` beyond ``max_bytes`` (declared or read)."""
    length = _content_length(response)
    body, cut = (
        (b"", True)
        if length is not None and length > max_bytes
        else read_body(response, deadlines, max_bytes)
    )
    if cut:
        raise ResponseTooLarge(f"{what} exceeds {max_bytes} bytes")
    return body


def decoded(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """An error body as text bytes: gzip/deflate decoded (at most ``max_bytes``), else as sent.

    We ask for identity, but some servers and gateways compress their errors anyway.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return body
    try:
        return zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(body, max_bytes)
    except zlib.error:
        return body
