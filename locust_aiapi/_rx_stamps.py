"""Kernel receive timestamps: when a chunk reached the machine, not when our greenlet got to read it.

Every user-space stamp is taken when the reading greenlet runs. When many streams deliver at once, the
last one read is stamped late (TTFT error p99 9 ms at 300 users on one core, 28 ms at 1,000). Linux
stamps each received segment in the kernel when ``SO_TIMESTAMPNS`` is set on the socket, and ``recvmsg``
returns the stamp of the newest segment in that read as ancillary data (and a segment that arrived while
earlier ones waited has been merged into their buffer, which took its stamp: reading them one at a time
does not separate them). Measured over loopback with a reader 20 ms late: the kernel stamp was within
0.05 ms of the ``send``. Reading with ``recvmsg`` instead of ``recv`` cost 0.5 µs more per read (9.1 -> 9.6
µs for send + read + parse, on this machine).

Clocks. The stamp is CLOCK_REALTIME; our records use ``perf_counter`` (CLOCK_MONOTONIC). :class:`RxClock`
measures the offset between the two once per response body (two clock reads bracketing one, in integer
nanoseconds: float seconds since 1970 have only ~0.2 µs resolution), so a step of the wall clock (NTP,
an operator) between requests never shifts a stamp. A converted kernel stamp is clamped to the user-space
stamp of the same read: it can never be later than the moment we held the bytes.

HTTPS. An ``SSLSocket`` cannot ``recvmsg``; where kernel stamps exist the shared TLS context hands out a
:class:`~locust_aiapi._tls_stream.TlsStream` instead, which reads its raw socket with ``recvmsg`` and
decrypts in memory, so HTTPS reads carry kernel stamps too.

Fallback. Where the option does not exist (not Linux, an architecture with other option numbers, a
gevent ``SSLSocket``) or a read carries no stamp, the user-space stamp is used and the read
counts as a user-stamped one (see ``RequestRecord.timestamps``).
"""

from __future__ import annotations

import atexit
import platform
import socket
import struct
import sys
import time
import weakref
from typing import Any, Final

__all__ = [
    "ANC_SIZE",
    "KERNEL_STAMPS_AVAILABLE",
    "RxClock",
    "enable_rx_stamps",
    "keep_stamping_on",
    "recv_stamped",
    "recv_waiting_first",
    "rx_stamps_enabled",
]

# SO_TIMESTAMPNS_OLD of include/uapi/asm-generic/socket.h (SCM_TIMESTAMPNS has the same value); the
# "old" layout is a struct timespec of two native longs. Python's socket module does not define it.
# alpha, mips, parisc and sparc number their socket options differently: no kernel stamps there.
_SO_TIMESTAMPNS: Final = 35
_GENERIC_MACHINES: Final = frozenset(
    {"x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "armv7l", "armv8l", "riscv64", "ppc64le", "s390x"}
)
KERNEL_STAMPS_AVAILABLE: Final = sys.platform == "linux" and platform.machine().lower() in _GENERIC_MACHINES
_TIMESPEC: Final = struct.Struct("@ll")
# the ancillary buffer of one stamped read
ANC_SIZE: Final = socket.CMSG_SPACE(_TIMESPEC.size) if KERNEL_STAMPS_AVAILABLE else 0
_TIMESPEC_SIZE: Final = _TIMESPEC.size
_unpack_timespec = _TIMESPEC.unpack_from
_SOL_SOCKET: Final = socket.SOL_SOCKET

_perf_counter = time.perf_counter
_perf_counter_ns = time.perf_counter_ns
_time_ns = time.time_ns

# sockets that have the option set: a pooled keep-alive connection pays for the setsockopt once
_stamped: weakref.WeakSet[Any] = weakref.WeakSet()
# Linux turns receive stamping on for the whole machine when the first socket asks and off when the last
# one closes, both deferred to a work queue: a segment that arrives meanwhile has no stamp. Seen in tests
# (a request right after every stamped socket had closed read with user stamps). One socket of ours that
# keeps the option for the life of the process keeps stamping on between connections.
_keeper: list[socket.socket] = []


def enable_rx_stamps(sock: Any) -> bool:
    """Ask the kernel to stamp what this TCP socket receives; False where it cannot (an SSL socket,
    the platform). A ``TlsStream`` passes the option on to its raw socket."""
    if not KERNEL_STAMPS_AVAILABLE:
        return False
    if sock in _stamped:  # a pooled connection: first (the checks below go through gevent's __getattr__)
        return True
    if not hasattr(sock, "recvmsg") or _is_tls(sock):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except (OSError, TypeError):
        return False
    _stamped.add(sock)
    keep_stamping_on()
    return True


def keep_stamping_on() -> None:
    """Keep the kernel's receive stamping on for this process (idempotent; call it before the first
    request where possible: the switch itself is deferred, see ``_keeper``)."""
    if _keeper or not KERNEL_STAMPS_AVAILABLE:
        return
    keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        keeper.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        keeper.close()
        return
    _keeper.append(keeper)
    atexit.register(keeper.close)


def rx_stamps_enabled(sock: Any) -> bool:
    return sock in _stamped


def _is_tls(sock: Any) -> bool:
    """An SSL socket whose ``recvmsg`` cannot work (stdlib's and gevent's raise NotImplementedError).

    A :class:`~locust_aiapi._tls_stream.TlsStream` reads its raw socket with ``recvmsg``: not one.
    """
    return hasattr(sock, "do_handshake") and not hasattr(sock, "raw_socket")


class RxClock:
    """The offset from CLOCK_REALTIME to the ``perf_counter`` timeline, measured when created."""

    __slots__ = ("_offset_ns",)

    def __init__(self) -> None:
        before_ns = _perf_counter_ns()
        wall_ns = _time_ns()
        after_ns = _perf_counter_ns()
        self._offset_ns = wall_ns - (before_ns + after_ns) // 2

    def to_perf_s(self, realtime_ns: int) -> float:
        return (realtime_ns - self._offset_ns) / 1e9

    def stamp_s(self, ancdata: list[tuple[int, int, bytes]], user_s: float) -> float | None:
        """The kernel's arrival time of a read on the ``perf_counter`` timeline (at most ``user_s``).

        Called once per streamed chunk: ``to_perf_s`` and ``min`` are written out and the constants are
        module globals (0.65 -> 0.4 µs per read on this machine, see ``benchmarks/chunk_cost.py``).
        """
        for level, kind, data in ancdata:
            if level == _SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC_SIZE:
                seconds, nanoseconds = _unpack_timespec(data)
                if seconds <= 0:
                    return None
                stamp_s = (seconds * 1_000_000_000 + nanoseconds - self._offset_ns) / 1e9
                return stamp_s if stamp_s < user_s else user_s
        return None


def recv_stamped(sock: Any, size: int, clock: RxClock) -> tuple[bytes, float, float | None]:
    """One read: ``(data, user_s, kernel_s)``; ``kernel_s`` is None when the read carried no stamp.

    gevent's ``recvmsg`` tries the non-blocking call and waits on the socket's read event (under the
    socket's timeout) only when nothing is there, like its ``recv``.
    """
    data, ancdata, _flags, _address = sock.recvmsg(size, ANC_SIZE)
    user_s = _perf_counter()
    return data, user_s, clock.stamp_s(ancdata, user_s) if ancdata else None


def recv_waiting_first(
    sock: Any, raw: Any, size: int, ancsize: int, drained: bool
) -> tuple[bytes, list[tuple[int, int, bytes]], bool]:
    """One ``recvmsg`` of ``raw``, the non-blocking socket under the gevent socket ``sock``:
    ``(data, ancdata, waited)``. ``drained`` says the last read took less than it asked for, so it
    emptied the socket (a stream at model speed): then this waits on ``sock``'s read event (under its
    timeout) before reading, instead of a read that fails with EAGAIN and the exception gevent raises
    and catches for it; a read that still finds nothing waits too. ``waited``: the hub ran meanwhile.
    Plain TCP (``BodyReader``) and TLS (``TlsStream``) read through here."""
    waited = drained
    if drained:
        sock._wait(sock._read_event)
    while True:
        try:
            data, ancdata, _flags, _address = raw.recvmsg(size, ancsize)
            return data, ancdata, waited
        except BlockingIOError:
            sock._wait(sock._read_event)
            waited = True
