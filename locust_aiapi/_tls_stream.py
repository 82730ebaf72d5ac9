"""TLS that keeps the kernel's receive stamps: decrypt in memory what the raw socket read with ``recvmsg``.

Python cannot ``recvmsg`` on an ``SSLSocket`` (OpenSSL reads the descriptor itself), so HTTPS had only
user-space stamps (see :mod:`~locust_aiapi._rx_stamps`). :class:`TlsStream` owns the raw TCP socket and
an ``ssl.SSLObject`` over two ``MemoryBIO``s, the way asyncio's ``sslproto`` does: what the socket
receives is written into the incoming BIO, what OpenSSL wants to send is read from the outgoing one.
Its ``recvmsg`` returns decrypted application bytes and the ancillary data (the kernel's stamp) of the
raw read that completed them, so ``recv_stamped``/``RxClock`` work unchanged.

Reads. Bytes that can be decrypted without the network (a record larger than the caller asked for,
records that came in the same raw read) are returned without a socket wait and carry the stamp of the
raw read they came in. Everything decryptable at once is returned together, as one TCP ``recv`` would:
one raw read is one read for the count of token events that shared a read. Reading a late stream one
record per raw read would not give each record its own stamp: the kernel has already merged the waiting
segments and kept the newest one's stamp (``benchmarks/coalesced_stamps.py``). Records that carry no
application data (TLS 1.3 session tickets, key updates) are consumed and the read goes on. A close
without ``close_notify`` reads as the end (b""), as gevent's ``SSLSocket`` (``suppress_ragged_eofs``)
did; the HTTP parser then decides whether the body was complete.

A streamed body is read by the hub when the raw socket is readable (:meth:`recvmsg_ready`). Otherwise
a socket wait is needed only when neither BIO nor OpenSSL (``read_ahead`` off) holds a byte, and after
a raw read that emptied the socket the next waits first (``_raw_recvmsg``): no failed read per chunk.

Timeouts are the raw gevent socket's (``settimeout`` is passed on); a timer that throws into the waiting
greenlet (``BodyReader``) interrupts any wait. :meth:`do_handshake` with a timeout of 0 is one step
(``SSLWantReadError`` while the server has the turn), as ``_tls._handshake_steps`` expects. After each
response's first decrypted bytes, the ~16 KiB buffer the session tickets made OpenSSL set up is given
back (``_tls_buffers``).
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any, Final

import gevent
import gevent.socket

from ._rx_stamps import ANC_SIZE, recv_waiting_first
from ._tls_buffers import release_idle_buffers, releasing_available
from ._tls_writes import TlsWrites

__all__ = ["TlsStream"]

RAW_RECV_SIZE: Final = 65536
# as _head.YIELD_BYTES: reading this much in a row without application data lets the loop run
YIELD_WITHOUT_DATA_BYTES: Final = 256 * 1024
_GeventSocket = gevent.socket.socket


class TlsStream(TlsWrites):
    """A client TLS connection over a raw gevent TCP socket, read with ``recvmsg``."""

    __slots__ = (
        "__weakref__",
        "_ancdata",
        "_drained",
        "_incoming",
        "_nonblocking",
        "_outgoing",
        "_plain",
        "_sock",
        "_tls",
        "ended",
    )

    def __init__(self, sock: Any, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self._sock = sock
        # the non-blocking socket under a gevent socket: read directly, waiting only when it is empty
        self._nonblocking: Any = sock._sock if type(sock) is _GeventSocket else None
        self._drained = False  # the last raw read took all there was: wait before the next one
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        # read and pending of the C object under the SSLObject: a Python call less per record
        self._plain: Any = getattr(self._tls, "_sslobj", self._tls)
        self._ancdata: list[tuple[int, int, bytes]] = []
        self.ended = False  # the end (close_notify, the raw socket's) is in: reads return b"" from now on
        self._unsent = b""  # an answer the hub could not send at once (``_send_out``)
        self._release_due = releasing_available()  # see _release_buffers
        self.write_failed = False  # an answer could not be sent: never reuse the connection

    # -- reading --------------------------------------------------------------------------------------

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> tuple[bytes, Any, int, None]:
        """Decrypted bytes (b"" at the end) and the ancillary data of the raw read that completed them."""
        if self.holds_more:
            data = self._decrypt(bufsize)
            if data is not None:
                return data, self._ancdata, 0, None
        without_data = 0
        while True:  # the common case, inlined: one raw read, one record (measured, see the benchmark)
            raw, ancdata = self._raw_recvmsg(ancbufsize)
            self._ancdata = ancdata
            self._take(raw)
            data = self._decrypt(bufsize)
            if data is not None:
                return data, ancdata, 0, None
            without_data = self._pace(without_data + len(raw))

    def recvmsg_ready(self, _bufsize: int, ancbufsize: int = 0) -> tuple[bytes, Any, int, None]:
        """``recvmsg`` when the raw socket is readable (``_hub_reads``): one raw read at most, no wait, all
        that can be decrypted (nothing may wait for a readiness that need not come), ``BlockingIOError``
        while nothing can be (a record's beginning, a session ticket). Once it returned, nothing that can
        be decrypted is held, but maybe the end (``ended``): a partial record needs the network."""
        if self.holds_more:
            data = self._decrypt_all()
            if data is not None:
                return data, self._ancdata, 0, None
        raw, ancdata, _flags, _address = self._nonblocking.recvmsg(RAW_RECV_SIZE, ancbufsize)
        self._ancdata = ancdata
        self._take(raw)
        data = self._decrypt_all()
        if data is None:
            raise BlockingIOError
        return data, ancdata, 0, None

    def _decrypt_all(self) -> bytes | None:
        """``_decrypt`` of all there is (a partial record and a raw read can hold more than one read asks:
        not one larger read, as each allocates its size: 256 KiB cost 20 µs a read, 64 KiB nothing)."""
        data = self._decrypt(RAW_RECV_SIZE, False)
        if data is None or len(data) < RAW_RECV_SIZE:
            return data
        parts = [data]
        try:
            while more := self._decrypt(RAW_RECV_SIZE, False):  # bounded: the BIO holds at most ~80 KiB
                parts.append(more)
        except ConnectionError:  # an answer the connection refused (see _answer): keep what came
            self._refused()
        return b"".join(parts)

    @property
    def holds_more(self) -> bool:
        """Records (or the end) already read from the raw socket: no readiness of it announces them."""
        return bool(self.ended or self._incoming.pending or self._plain.pending())

    @property
    def reads_when_ready(self) -> bool:
        """:meth:`recvmsg_ready` works: the raw socket is a gevent socket, read directly."""
        return self._nonblocking is not None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._read(bufsize, 0)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(nbytes or len(view), 0)
        view[: len(data)] = data
        return len(data)

    def pending(self) -> int:
        return self._tls.pending()

    def _read(self, size: int, ancsize: int) -> bytes:
        without_data = 0
        while True:
            if self.holds_more:
                data = self._decrypt(size)
                if data is not None:
                    return data
            without_data = self._pace(without_data + self._receive(ancsize))

    @staticmethod
    def _pace(without_data: int) -> int:
        """Let the loop run after ``YIELD_WITHOUT_DATA_BYTES`` read without application data (a ticket or
        key-update flood), so others read and the reader's timer can fire. Returns the new count."""
        if without_data < YIELD_WITHOUT_DATA_BYTES:
            return without_data
        gevent.idle()
        return 0

    def _decrypt(self, size: int, wait: bool = True) -> bytes | None:
        """What can be decrypted now (b"" at the end), None when the network must deliver more. An answer
        OpenSSL asks for is sent, waiting for the socket; or with ``wait`` False (in the hub) as far as it
        goes at once, the rest kept for :meth:`flush` (``must_send``)."""
        try:
            data: bytes | None = self._plain.read(size)
        except ssl.SSLWantReadError:
            data = None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        if data and self._incoming.pending and len(data) < size:
            data = self._more(data, size)
        if self._outgoing.pending:  # a key update or a renegotiation (also behind the data) asks an answer
            self._answer(wait, data)
        if data is None and not self.ended:
            return None
        if not data:  # close_notify, or the raw socket's end: ended for good, no further wait
            self.ended = True
            return b""
        if self._release_due:
            self._release_buffers()
        return data

    def _answer(self, wait: bool, data: bytes | None) -> None:
        """Send OpenSSL's answer. A connection that refuses it (the server reset it after its last
        records) does not lose the data decrypted with it: that is returned, and the connection is not
        pooled (``write_failed``); the next read reports the error, if the body needs one. Any other
        error (the body's timer, a ``close()`` elsewhere) is raised."""
        try:
            self._send_out(wait)
        except ConnectionError:
            if not data:
                raise
            self._refused()

    def _refused(self) -> None:
        self.write_failed = True
        self._unsent = b""  # nothing more goes out on this connection

    def _release_buffers(self) -> None:
        """Once per response: the buffer the session tickets left OpenSSL (``_tls_buffers``)."""
        if not self._tls.pending() and release_idle_buffers(self._tls):
            self._release_due = False

    def _more(self, data: bytes, size: int) -> bytes:
        """``data`` plus the further records the same raw read completed, up to ``size`` bytes."""
        parts = [data]
        total = len(data)
        try:
            while self._incoming.pending and total < size:
                part = self._plain.read(size - total)
                if not part:
                    self.ended = True  # a close_notify behind the data: the next read is the end
                    break
                parts.append(part)
                total += len(part)
        except ssl.SSLWantReadError:
            pass  # a record the next raw read completes
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            self.ended = True
        return b"".join(parts)

    def _receive(self, ancsize: int) -> int:
        """One raw read (waiting under the socket's timeout) into the incoming BIO; its size."""
        raw, self._ancdata = self._raw_recvmsg(ancsize)
        self._take(raw)
        return len(raw)

    def _raw_recvmsg(self, ancsize: int) -> tuple[bytes, list[tuple[int, int, bytes]]]:
        """One raw read and its ancillary data, waiting (under the socket's timeout) while there is none;
        waiting first after a raw read that emptied the socket (``recv_waiting_first``). A timeout of 0
        (the handshake's steps) or a socket that is not gevent's: its own ``recvmsg`` (may raise
        ``BlockingIOError``)."""
        sock, nonblocking = self._sock, self._nonblocking
        if nonblocking is None or sock.timeout == 0.0:
            raw, ancdata, _flags, _address = sock.recvmsg(RAW_RECV_SIZE, ancsize)
            return raw, ancdata
        raw, ancdata, _waited = recv_waiting_first(sock, nonblocking, RAW_RECV_SIZE, ancsize, self._drained)
        self._drained = len(raw) < RAW_RECV_SIZE
        return raw, ancdata

    def _take(self, raw: bytes) -> None:
        if raw:
            self._incoming.write(raw)
        else:
            self._incoming.write_eof()
            self.ended = True

    # -- the handshake --------------------------------------------------------------------------------

    def do_handshake(self) -> None:
        """The handshake; with a timeout of 0 one step, ``SSLWantReadError`` while the server has the turn."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._send_out()
                if not self._receive_for_handshake():
                    raise
            except ssl.SSLError:
                with contextlib.suppress(OSError):
                    self._send_out()  # the alert: the server learns why (as with an SSLSocket)
                raise
            else:
                self._send_out()
                return

    def _receive_for_handshake(self) -> bool:
        # with its stamp: a server that speaks first may send data with its last handshake flight
        try:
            raw, self._ancdata, _flags, _address = self._sock.recvmsg(RAW_RECV_SIZE, ANC_SIZE)
        except BlockingIOError:
            return False
        self._take(raw)
        return True

    # -- the socket and the session -------------------------------------------------------------------

    @property
    def raw_socket(self) -> Any:
        return self._sock

    @property
    def server_hostname(self) -> str | None:
        return self._tls.server_hostname

    @property
    def context(self) -> ssl.SSLContext:
        return self._tls.context

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self._tls.getpeercert(binary_form)

    def selected_alpn_protocol(self) -> str | None:
        return self._tls.selected_alpn_protocol()

    def version(self) -> str | None:
        return self._tls.version()

    def cipher(self) -> tuple[str, str, int] | None:
        return self._tls.cipher()
