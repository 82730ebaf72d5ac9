"""TLS, the sending side of :class:`~locust_aiapi._tls_stream.TlsStream`: what OpenSSL wants to send
(application data, handshake flights, answers to key updates and renegotiations) goes out through the
raw socket, waiting for it in a greenlet; in the hub (``_hub_reads``) as far as it goes at once, the
rest kept for :meth:`TlsWrites.flush`."""

from __future__ import annotations

import ssl
from typing import Any

from ._raw_socket_calls import WRITE_SLICE, RawSocketCalls
from ._tls_buffers import releasing_available

__all__ = ["TlsWrites"]


class TlsWrites(RawSocketCalls):
    """``sendall``, ``send`` and what they share with reads (``_send_out``) of a TLS stream."""

    __slots__ = ("_release_due", "_unsent")
    _tls: ssl.SSLObject
    _outgoing: ssl.MemoryBIO
    _nonblocking: Any
    _unsent: bytes
    _release_due: bool

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), WRITE_SLICE):
            self._tls.write(view[start : start + WRITE_SLICE])
            self._send_out()
        self._release_due = releasing_available()

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
