"""Give an idle TLS connection's 16 KiB record buffer back to OpenSSL's allocator.

Why. A TLS 1.3 client processes the server's session tickets (post-handshake messages, sent by most
servers and by our mock) inside a read, and OpenSSL 3.0 sets up its write buffer for that
(``ssl3_setup_buffers``, ~16.6 KiB) and keeps it until the next write completes: for a streaming user
that is the whole stream. ``SSL_MODE_RELEASE_BUFFERS`` (CPython sets it) does not cover this case.
Measured with 2,000 idle connections to a server that sends two tickets: 34.9 KiB allocated per
connection, 18.7 after ``SSL_free_buffers``, and resident memory 25.8 -> 19.4 KiB per connection.

How. Python has no binding for ``SSL_free_buffers``; the function is reached with ctypes through
the ``_ssl`` extension's own OpenSSL, and the ``SSL *`` is read from the ``_ssl._SSLSocket`` object,
whose C struct has begun ``PyObject_HEAD; PyObject *Socket; SSL *ssl;`` in every CPython since 3.7.
That reading is checked once per process on a throwaway object before it is trusted: CPython stores
the object as the ``SSL``'s application data (``SSL_set_app_data``), so the pointer read must give
the object back. Anything unexpected (another interpreter, a statically linked OpenSSL, a layout
that fails the check) leaves this off, and the connection keeps its buffer as before.

Safety. OpenSSL refuses (returns 0) while a record is partly read; this is called only when OpenSSL
holds no decrypted byte either (``pending() == 0``), and not at all on OpenSSL versions with
CVE-2024-4741 (a use after free in ``SSL_free_buffers``).
"""

from __future__ import annotations

import _ssl
import ctypes
import functools
import ssl
import sys
from typing import Any

__all__ = ["release_idle_buffers", "releasing_available"]

# first patch release without CVE-2024-4741, per minor version; 3.4 and later never had it
_FIXED_PATCH = {(3, 0): 14, (3, 1): 6, (3, 2): 2, (3, 3): 1}

_SSL_SOCKET: Any = getattr(_ssl, "_SSLSocket", None)  # the type whose C struct is read
_pointer_offset = object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)


@functools.cache
def _free_buffers() -> Any:
    """``SSL_free_buffers``, or None: loaded and checked on the first call of the process."""
    return _load()


def releasing_available() -> bool:
    """True when ``release_idle_buffers`` can work in this process (checked once)."""
    return _free_buffers() is not None


def release_idle_buffers(sslobj: Any) -> bool:
    """Free the record buffers of ``sslobj`` (an ``ssl.SSLObject``) when it holds no data; True when
    OpenSSL freed them. The caller checks ``sslobj.pending() == 0`` first."""
    free_buffers, inner = _free_buffers(), sslobj._sslobj
    if free_buffers is None or type(inner) is not _SSL_SOCKET:
        return False
    pointer = ctypes.c_void_p.from_address(id(inner) + _pointer_offset).value
    return bool(pointer) and free_buffers(pointer) == 1


def _openssl_is_fixed() -> bool:
    major, minor, _fix, patch, _status = ssl.OPENSSL_VERSION_INFO
    if (major, minor) in _FIXED_PATCH:
        return patch >= _FIXED_PATCH[(major, minor)]
    return (major, minor) >= (3, 4)


def _load() -> Any:
    """``SSL_free_buffers`` of the ``_ssl`` module's OpenSSL, or None when it cannot be trusted here."""
    if sys.implementation.name != "cpython" or not (3, 7) <= sys.version_info[:2] <= (3, 14):
        return None  # the struct layout below is read from these versions' Modules/_ssl.c
    if not _openssl_is_fixed() or _SSL_SOCKET is None:
        return None
    try:
        library = ctypes.CDLL(_ssl.__file__)
        free_buffers, app_data = library.SSL_free_buffers, library.SSL_get_ex_data
    except (OSError, AttributeError):
        return None
    free_buffers.argtypes, free_buffers.restype = [ctypes.c_void_p], ctypes.c_int
    app_data.argtypes, app_data.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_void_p
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    inner = probe._sslobj  # type: ignore[attr-defined]
    if type(inner) is not _SSL_SOCKET:
        return None
    pointer = ctypes.c_void_p.from_address(id(inner) + _pointer_offset).value
    if not pointer or app_data(pointer, 0) != id(inner):
        return None
    return free_buffers
