"""An exception raised by the socket code, as a failure kind and a short, stable message."""

from __future__ import annotations

import errno
import socket
import ssl

import gevent
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError

from ._records import FailureKind

__all__ = ["classify_exception"]

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
    if isinstance(exc, (RecursionError, ValueError)):  # a body we cannot parse: never a connection problem
        return FailureKind.PROTOCOL_ERROR, f"invalid response: {type(exc).__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return FailureKind.CONNECTION_ERROR, "connection refused"
    if isinstance(exc, ConnectionResetError):
        return FailureKind.CONNECTION_ERROR, "connection reset by peer"
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        return FailureKind.CONNECTION_ERROR, f"{name}: {exc.strerror or exc}"
    return FailureKind.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}"
