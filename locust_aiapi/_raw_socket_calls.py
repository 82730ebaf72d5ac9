"""The plain socket calls of a stream over a raw socket (``TlsStream``): passed on to that socket, or
(``sendfile``) made of the stream's own ``sendall``."""

from __future__ import annotations

from typing import Any, Final, TypeVar

__all__ = ["WRITE_SLICE", "RawSocketCalls"]

# bounds the ciphertext copy a large request body makes in the outgoing BIO
WRITE_SLICE: Final = 256 * 1024

_Stream = TypeVar("_Stream", bound="RawSocketCalls")


class RawSocketCalls:
    """``fileno``, timeouts, options, addresses, ``shutdown`` and ``close`` of the raw socket ``_sock``."""

    __slots__ = ()
    _sock: Any

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        raise NotImplementedError

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """A file body (geventhttpclient sends one with ``sendfile``), ``WRITE_SLICE`` at a time."""
        file.seek(offset)
        sent = 0
        while count is None or sent < count:
            piece = file.read(WRITE_SLICE if count is None else min(WRITE_SLICE, count - sent))
            if not piece:
                break
            self.sendall(piece)
            sent += len(piece)
        return sent

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def settimeout(self, timeout_s: float | None) -> None:
        self._sock.settimeout(timeout_s)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()  # type: ignore[no-any-return]

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def getsockopt(self, *args: Any) -> Any:
        return self._sock.getsockopt(*args)

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self: _Stream) -> _Stream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
