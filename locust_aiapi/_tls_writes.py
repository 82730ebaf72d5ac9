"""TLS, the sending side of :class:`~locust_aiapi._tls_stream.TlsStream`: what OpenSSL wants to send
(application data, handshake flights, answers to key updates and renegotiations) goes out through the
raw socket, waiting for it in a greenlet; in the hub (``_hub_reads``) as far as it goes at once, the
rest kept for :meth:`TlsWrites.flush`."""

from __future__ import annotations

import ssl
from typing import Any

from ._raw_socket_calls import WRITE_SLICE, RawSocketCalls
from ._rx_stamps import ANC_SIZE
from ._tls_buffers import releasing_available

__all__ = ["HANDSHAKE_READS", "TlsWrites"]

# raw reads a write waits through for a renegotiation's server flight (a flight is a few reads)
HANDSHAKE_READS = 64


class TlsWrites(RawSocketCalls):
    """``sendall``, ``send`` and what they share with reads (``_send_out``) of a TLS stream."""

    __slots__ = ("_release_due", "_unsent", "write_failed")
    _tls: ssl.SSLObject
    _outgoing: ssl.MemoryBIO
    _nonblocking: Any
    _unsent: bytes
    _release_due: bool
    write_failed: bool

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), WRITE_SLICE):
            self._write(view[start : start + WRITE_SLICE])
            self._send_out()
        self._release_due = releasing_available()

    def _write(self, piece: memoryview) -> None:
        """``SSL_write``; in a renegotiation the server asked for (TLS 1.2) its next flight comes first,
        read here as an ``SSLSocket`` would (under the socket's timeout, a bounded number of reads)."""
        for _ in range(HANDSHAKE_READS):
            try:
                self._tls.write(piece)
                return
            except ssl.SSLWantReadError:
                self._send_out()
                self._receive(ANC_SIZE)
        raise ssl.SSLError(f"a renegotiation did not complete within {HANDSHAKE_READS} reads")

    def _receive(self, ancsize: int) -> int:
        raise NotImplementedError  # TlsStream's: one raw read into the incoming BIO

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        view = memoryview(data).cast("B")[:WRITE_SLICE]
        self.sendall(view)
        return len(view)

    def _send_out(self, wait: bool = True) -> None:
        data = self._outgoing.read()
        if self._unsent:
            data = self._unsent + data
        if data and wait:
            self._sock.sendall(data)
            self._unsent = b""
        elif data:
            try:
                self._unsent = data[self._nonblocking.send(data) :]
            except BlockingIOError:
                self._unsent = data

    @property
    def must_send(self) -> bool:
        """Part of an answer (key update, renegotiation) waits to be sent: :meth:`flush` in a greenlet."""
        return bool(self._unsent)

    def flush(self) -> None:
        if self._unsent:
            self._send_out()
