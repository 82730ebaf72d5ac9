"""Socket code, part three: one response body, handed on as it arrives (the per-chunk hot path).

geventhttpclient's own ``read(n)`` keeps reading until ``n`` bytes are buffered, which would
hold a streamed token back until later ones arrive. :class:`BodyReader` instead returns
whatever the last ``recv`` produced, so every chunk is timestamped when it actually arrives.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import gevent.socket
from geventhttpclient._parser import HTTPResponseParser
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError, HTTPResponse

from ._head import Pacer
from ._limits import Deadlines
from ._rx_stamps import ANC_SIZE, RxClock, recv_stamped, recv_waiting_first

__all__ = ["RECV_SIZE", "BodyReader", "Response"]

RECV_SIZE = 65536

perf_counter = time.perf_counter
_GeventSocket = gevent.socket.socket


class Response(Protocol):
    """The parts of geventhttpclient's ``HTTPSocketPoolResponse`` this package uses."""

    @property
    def status_code(self) -> int: ...

    @property
    def message_complete(self) -> bool: ...

    def get(self, key: str, default: str | None = None) -> Any: ...

    def feed(self, data: bytes) -> None: ...

    def release(self) -> None: ...


class BodyReader:
    """Reads one response body as it arrives, with one timer for the whole body.

    gevent arms and disarms a timer on every blocking ``recv`` of a socket that has a timeout;
    at one recv per streamed chunk that was ~18 % of the load generator's CPU. Here the socket
    waits without a timeout (set once per body, restored by :meth:`close` or as soon as the body is
    complete, before the connection can be reused) and a single timer, re-armed only when it fires,
    throws into the reading greenlet once nothing has arrived for the socket's timeout
    (``network_timeout``) or a deadline of the attempt (first token, whole request) has passed.

    After each :meth:`read`, ``arrived_s`` is when those bytes arrived: the kernel's receive stamp
    where the socket has them (see :mod:`~locust_aiapi._rx_stamps`), else our stamp right after the
    read; ``lag_s`` is the client lag of that read (our stamp minus the kernel's), None without a
    kernel stamp; ``read_s`` is our own stamp right after the last read that returned. Body bytes that
    came with the head arrived with the head's last read.

    Speed (one streamed chunk is one read; ``benchmarks/chunk_cost.py``): on a plain gevent socket the
    non-blocking socket under it is read directly, and only a read that finds nothing waits for it, so
    gevent's wrapper, a second clock read (to tell a waiting read for the :class:`Pacer`) and two
    ``settimeout`` calls per read are gone. After a read that took less than ``RECV_SIZE`` (it emptied
    the socket: a stream at model speed) the next one waits for the socket first, instead of a read
    that fails with EAGAIN and its exception: one system call and one raised exception less per
    chunk. A socket that had more (a flood, a burst) is read again at once. The parser appends each
    decoded body piece to a list (its ``_on_body`` callback is the list's ``append``, not a Python
    method): no copy into a ``bytearray`` and out again.
    """

    __slots__ = (
        "_ancsize",
        "_clock",
        "_deadlines",
        "_drained",
        "_feed",
        "_greenlet",
        "_idle_s",
        "_pacer",
        "_parts",
        "_raw",
        "_ready",
        "_response",
        "_restore_s",
        "_sock",
        "_timer",
        "arrived_s",
        "done",
        "end_held",
        "found_nothing",
        "lag_s",
        "over_tls",
        "read_s",
        "send_waits",
    )

    def __init__(self, response: Response, deadlines: Deadlines) -> None:
        self._response = response
        self._deadlines = deadlines
        sock = self._sock = response._sock  # type: ignore[attr-defined]
        self._idle_s: float | None = sock.gettimeout() if sock is not None else None
        self._restore_s = self._idle_s
        if self._idle_s is not None:
            sock.settimeout(None)  # our timer guards every wait of this body
        # the non-blocking socket under a plain gevent socket (never under TLS: that would skip decryption)
        self._raw: Any = sock._sock if type(sock) is _GeventSocket else None
        # what reads the socket once it is readable, without a wait (``_hub_reads``): the raw socket's
        # recvmsg, or a TlsStream's over its raw gevent socket; None: this greenlet reads it
        self._ready: Callable[[int, int], tuple[bytes, Any, int, Any]] | None = (
            self._raw.recvmsg if self._raw is not None
            else sock.recvmsg_ready if getattr(sock, "reads_when_ready", False) else None
        )  # fmt: skip
        # read_ready reads a TlsStream (what it holds, what it must send count then)
        self.over_tls = self._ready is not None and self._raw is None
        self._drained = False  # the last raw read took all there was: wait before the next one
        self.read_s = perf_counter()
        self._clock: RxClock | None = getattr(response, "rx_clock", None)
        self._ancsize = ANC_SIZE if self._clock is not None else 0
        # the body is over (read_ready keeps it; it may be whole with the head)
        self.done: bool = bool(response.message_complete)
        self.found_nothing = False  # the last read_ready found the socket empty
        self.end_held = False  # (TLS) the last read_ready left the end in memory: the next read returns it
        self.send_waits = False  # read_ready left an answer to send that would wait (TLS): flush_sends
        self.arrived_s: float = getattr(response, "rx_arrived_s", None) or self.read_s
        self.lag_s: float | None = getattr(response, "rx_lag_s", None)
        self._parts: list[bytes] = []
        self._feed = _body_parser(response, self._parts)
        self._greenlet = gevent.getcurrent()
        self._pacer = Pacer()
        self._timer: Any = None
        self._arm(self.read_s)

    def _arm(self, now_s: float) -> None:
        wait_s = self._deadlines.wait_s(now_s, self._idle_s and self._idle_s - (now_s - self.read_s), None)
        if wait_s is not None:
            self._timer = gevent.get_hub().loop.timer(wait_s)
            self._timer.start(self._on_timer)

    def _on_timer(self) -> None:
        self._timer.close()
        self._timer = None
        now_s = perf_counter()
        expired: BaseException | None = self._deadlines.expired(now_s)
        if expired is None and self._idle_s and now_s - self.read_s >= self._idle_s:
            expired = TimeoutError("timed out")
        if expired is not None:
            self._greenlet.throw(expired)
        else:
            self._arm(now_s)

    def token_arrived(self) -> None:
        """The first token is in: the TTFT deadline no longer applies (the timer re-arms lazily)."""
        self._deadlines.token_arrived()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        self._restore_timeout()

    def _restore_timeout(self) -> None:
        """Give the socket its timeout back, once: the pool may hand it to the next request."""
        if self._restore_s is not None:
            timeout_s, self._restore_s = self._restore_s, None
            with contextlib.suppress(OSError):
                self._sock.settimeout(timeout_s)

    def read(self) -> bytes:
        """The body bytes available now, waiting only when there are none; b"" at the end."""
        parts = self._parts
        while not parts:
            response = self._response
            if response.message_complete or response._sock is None:  # type: ignore[attr-defined]
                self._restore_timeout()
                return b""
            data = self._recv()
            if data:
                self._feed(data)
                if response.message_complete:  # the socket went back to the pool: before anyone reuses it
                    self._restore_timeout()
            else:
                _feed_eof(response)
        return self.buffered()

    def _recv(self) -> bytes:
        """One read; a read that found nothing waited, and the hub ran every other greenlet meanwhile."""
        raw = self._raw
        if raw is None:
            return self._recv_wrapped()
        data, ancdata, waited = recv_waiting_first(self._sock, raw, RECV_SIZE, self._ancsize, self._drained)
        self._drained = len(data) < RECV_SIZE
        self._pacer.after_read(len(data), waited, self._arrived(ancdata))
        return data

    @property
    def read_event(self) -> Any:
        """The gevent socket's own read watcher, for :meth:`read_ready` once it fires (its ``close()``
        then reaches the reader); None: read with :meth:`read`."""
        if self._ready is None:
            return None
        return (self._sock if self._raw is not None else self._sock.raw_socket)._read_event

    def flush_sends(self) -> None:
        """Send what :attr:`send_waits` says is waiting, waiting for the socket (in a greenlet)."""
        self._sock.flush()
        self.send_waits = False

    @property
    def holds_more(self) -> bool:
        """The socket object holds what no readiness will announce: TLS records that came with an
        earlier raw read (the head's), a close_notify behind the data."""
        return self.over_tls and bool(self._sock.holds_more)

    def buffered(self) -> bytes:
        """The body bytes already decoded (those that came with the head), without a read."""
        parts = self._parts
        chunk = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        return bytes(chunk)

    def read_ready(self) -> bytes:
        """One non-blocking read of the socket (:attr:`read_event`) once it is readable, for
        :mod:`~locust_aiapi._hub_reads`: the body bytes it completed (b"": none yet, or a wake-up that
        found nothing); :attr:`done` is set once the body is over. Once per chunk: written out (the join
        is :meth:`buffered`'s)."""
        try:
            data, ancdata, _flags, _address = self._ready(RECV_SIZE, self._ancsize)  # type: ignore[misc]
        except BlockingIOError:
            data = None
        if self.over_tls:  # an answer (key update, renegotiation) the hub cannot send without a wait
            sock = self._sock
            self.send_waits = sock.must_send
            self.end_held = sock.ended
        self.found_nothing = data is None
        if data is None:
            return b""
        self._arrived(ancdata)
        response = self._response
        if data:
            self._feed(data)
        else:
            _feed_eof(response)
        if response.message_complete:  # the socket went back to the pool: before anyone reuses it
            self.done = True
            self._restore_timeout()
        parts = self._parts
        if not parts:
            return b""
        chunk = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        return bytes(chunk)

    def _arrived(self, ancdata: list[tuple[int, int, bytes]]) -> float:
        """Stamp a raw read that just returned (``arrived_s``, ``lag_s``); returns our own stamp."""
        now_s = self.read_s = perf_counter()
        clock = self._clock
        kernel_s = clock.stamp_s(ancdata, now_s) if ancdata and clock is not None else None
        if kernel_s is None:
            self.arrived_s, self.lag_s = now_s, None
        else:
            self.arrived_s, self.lag_s = kernel_s, now_s - kernel_s
        return now_s

    def _recv_wrapped(self) -> bytes:
        """One read through the socket object itself (TLS, a socket that is not gevent's)."""
        began_s = perf_counter()
        data = self._read(self._sock)
        self._pacer.after_recv(len(data), began_s, self.read_s)
        return data

    def _read(self, sock: Any) -> bytes:
        """One read, stamped: one clock read after it, plus the kernel's stamp when there is one."""
        clock = self._clock
        if clock is None:
            data = bytes(sock.recv(RECV_SIZE))
            self.arrived_s = self.read_s = perf_counter()
            return data
        data, now_s, kernel_s = recv_stamped(sock, RECV_SIZE, clock)
        self.read_s = now_s
        if kernel_s is None:
            self.arrived_s, self.lag_s = now_s, None
        else:
            self.arrived_s, self.lag_s = kernel_s, now_s - kernel_s
        return data


def _body_parser(response: Response, parts: list[bytes]) -> Callable[[bytes], None]:
    """The response parser's ``feed``, with every decoded body piece appended to ``parts``.

    Body bytes that came with the head are already in the parser's buffer: they come first.
    geventhttpclient's Python ``feed`` only adds a recovery for a HEAD answer with a body; a body
    reader never feeds one (its message is complete with the head), so the C parser is called directly.
    """
    buffer: bytearray = response._body_buffer  # type: ignore[attr-defined]
    if buffer:
        parts.append(bytes(buffer))
        del buffer[:]
    response._on_body = parts.append  # type: ignore[attr-defined]
    if isinstance(response, HTTPResponse) and type(response).feed is HTTPResponse.feed:
        feed: Callable[[bytes], None] = HTTPResponseParser.feed.__get__(response)
        return feed
    return response.feed


def _feed_eof(response: Response) -> None:
    """The peer closed: that ends a read-until-close body, and breaks any other."""
    with contextlib.suppress(HTTPParseError):
        response.feed(b"")
    if not response.message_complete:
        response.release()
        raise HTTPConnectionClosed("connection closed before the end of the response body")
