"""Socket code, part two: a connection from the pool, one response head under bounds, pacing.

geventhttpclient's response reads its headers with no bound on bytes, count or time (a server
writing headers forever took the process to 4 GB) and hands the connection back to the pool when
an interim ``1xx`` response completes, before the final response is read (177 of 195 answers after
``100 Continue`` / ``103 Early Hints`` were truncated, and the unread bytes corrupted the next
request on that connection). :class:`BoundedResponse` replaces exactly those two parts.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

import gevent
import gevent.monkey
from geventhttpclient.response import (
    HTTPConnectionClosed,
    HTTPParseError,
    HTTPResponse,
    HTTPSocketPoolResponse,
)

from ._errors import ProtocolError
from ._limits import Deadlines
from ._rx_stamps import RxClock, recv_stamped, rx_stamps_enabled

__all__ = ["BoundedResponse", "Pacer", "tune_connection_pool"]

perf_counter = time.perf_counter

HEAD_RECV_SIZE = 16 * 1024
# Yield to other greenlets after this much continuous reading. Measured against a server that writes a
# valid stream as fast as the socket takes it: without yielding, other users' TTFT read 13 s and an 8 s
# run lasted 33 s. gevent's own switch interval is 5 ms; 256 KiB is a few ms of SSE parsing.
# ``gevent.idle()``, not ``sleep(0)``: sleep(0) may resume us before the loop polls for I/O, so users
# waiting on a socket still starved (20 requests: 3.0 s with sleep(0), 0.84 s with idle()).
YIELD_BYTES = 256 * 1024
YIELD_AFTER_S = 0.005
# A recv that took longer than this waited for data, and the hub ran other greenlets meanwhile.
WAITED_S = 0.0005


class Pacer:
    """Counts continuous reading and lets the loop run a cycle every ``YIELD_BYTES`` or ``YIELD_AFTER_S``.

    A recv that had to wait already let every other greenlet run, so it restarts the count; a
    stream that arrives at model speed therefore never pays for an extra switch.
    """

    __slots__ = ("_bytes", "_since_s")

    def __init__(self) -> None:
        self._bytes = 0
        self._since_s = perf_counter()

    def after_recv(self, size: int, began_s: float, now_s: float) -> None:
        self.after_read(size, now_s - began_s > WAITED_S, now_s)

    def after_read(self, size: int, waited: bool, now_s: float) -> None:
        """``size`` bytes read at ``now_s``; ``waited``: the read had to wait for them."""
        if waited:
            self._bytes, self._since_s = size, now_s
            return
        self._bytes += size
        if self._bytes >= YIELD_BYTES or now_s - self._since_s >= YIELD_AFTER_S:
            gevent.idle()
            self._bytes, self._since_s = 0, perf_counter()


class BoundedResponse(HTTPSocketPoolResponse):
    """geventhttpclient's pooled response, with a bounded head and a pool return only when final."""

    # The C parser looks its callbacks up by a new string at every call, which the type's attribute
    # cache never holds: found on the first class of the MRO the walk is one dict, not four (~0.15 µs
    # a chunk). The body reader's own ``_on_body`` (an instance attribute) still comes first. Only
    # the ones called per body piece and per header line (the others are once per response).
    _on_body = HTTPSocketPoolResponse._on_body
    _on_header_field = HTTPSocketPoolResponse._on_header_field
    _on_header_value = HTTPSocketPoolResponse._on_header_value

    def __init__(self, sock: Any, pool: Any, deadlines: Deadlines, **kw: Any) -> None:
        self._deadlines = deadlines
        self._header_count = 0
        # arrival of the last head read (body bytes that came with the head arrived then), and its
        # client lag when the kernel stamped it
        self.rx_arrived_s: float | None = None
        self.rx_lag_s: float | None = None
        self.rx_clock: RxClock | None = RxClock() if rx_stamps_enabled(sock) else None
        super().__init__(sock, pool, **kw)

    def should_close(self) -> bool:
        """Also when a TLS answer to the server could not be sent (``TlsStream.write_failed``): the
        connection is broken even if the body ended."""
        return bool(super().should_close() or getattr(self._sock, "write_failed", False))

    def _on_message_complete(self) -> None:
        HTTPResponse._on_message_complete(self)
        if self.get_code() >= 200:  # an interim 1xx ends; the final response is still on the socket
            self.release()

    def _flush_header(self) -> None:
        if self._current_header_field is not None:
            self._header_count += 1
        super()._flush_header()

    def _read_headers(self, pre_buffered: bytes = b"") -> None:
        try:
            if pre_buffered:
                self.feed(pre_buffered)
            _HeadReader(self).run()
            if self.message_complete:
                self.release()
        except BaseException:
            self.release()
            raise

    def head_done(self) -> bool:
        return self.headers_complete and self.get_code() >= 200


class _HeadReader:
    """The loop that reads status lines and headers (interim responses skipped) until the final head."""

    __slots__ = ("_first_byte_s", "_pacer", "_received", "_response", "_sock")

    def __init__(self, response: BoundedResponse) -> None:
        self._response = response
        self._sock: Any = response._sock
        self._received = 0
        self._first_byte_s: float | None = None
        self._pacer = Pacer()

    def run(self) -> None:
        response, limits = self._response, self._response._deadlines.limits
        while not response.head_done():
            data = self._recv()
            if not data:
                _closed(response, self._received)
            self._received += len(data)
            response.feed(data)
            if not response.head_done() and self._received > limits.max_header_bytes:
                raise ProtocolError(f"response headers exceed {limits.max_header_bytes} bytes")
            if response._header_count > limits.max_headers:
                raise ProtocolError(f"more than {limits.max_headers} response headers")

    def _recv(self) -> bytes:
        sock, deadlines = self._sock, self._response._deadlines
        idle_s = sock.gettimeout()
        began_s = perf_counter()
        sock.settimeout(deadlines.wait_s(began_s, idle_s, self._first_byte_s))
        try:
            data, now_s = self._read(sock)
        except TimeoutError:
            raise self._timed_out(idle_s) from None
        finally:
            sock.settimeout(idle_s)
        if self._first_byte_s is None:
            self._first_byte_s = now_s
        self._pacer.after_recv(len(data), began_s, now_s)
        return data

    def _read(self, sock: Any) -> tuple[bytes, float]:
        response = self._response
        clock = response.rx_clock
        if clock is None:
            data = bytes(sock.recv(HEAD_RECV_SIZE))
            response.rx_arrived_s = now_s = perf_counter()
            return data, now_s
        data, now_s, kernel_s = recv_stamped(sock, HEAD_RECV_SIZE, clock)
        response.rx_arrived_s = now_s if kernel_s is None else kernel_s
        response.rx_lag_s = None if kernel_s is None else now_s - kernel_s
        return data, now_s

    def _timed_out(self, idle_s: float | None) -> BaseException:
        now_s = perf_counter()
        deadlines = self._response._deadlines
        if self._first_byte_s is not None:
            expired = deadlines.header_expired(now_s, self._first_byte_s)
        else:
            expired = deadlines.expired(now_s)
        return expired or TimeoutError("timed out")


def _closed(response: BoundedResponse, received: int) -> None:
    if not received:
        raise HTTPConnectionClosed("connection closed.")
    if response.headers_complete:
        raise HTTPParseError("connection closed after an interim response")
    raise HTTPParseError("connection closed before the end of the headers")


_unpatched_select = gevent.monkey.get_original("select", "select")
_unpatched_getaddrinfo = gevent.monkey.get_original("socket", "getaddrinfo")


def tune_connection_pool(connections: Any) -> None:
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
