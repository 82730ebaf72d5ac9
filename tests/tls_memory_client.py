"""Opens ``N`` HTTPS streams to a mock through ``TlsStream``s and holds them; prints what each costs.

Run as a script by ``tests/test_tls_buffers.py`` (its own process, so its heap holds nothing else):
``python tests/tls_memory_client.py URL CA_FILE N on|off``. Each connection sends one streamed chat
request and reads until its first ``data:`` line, as a streaming user does, then stays open. Printed as
JSON: malloc'd bytes in use (glibc ``mallinfo2``) and resident memory per open stream in KiB, and how
many streams gave their record buffer back. ``off`` makes ``releasing_available`` say no, as on an
interpreter where the release cannot be trusted.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from pathlib import Path
from typing import Any

import gevent.socket
import orjson

from locust_aiapi import _tls_buffers, _tls_stream, _tls_writes
from locust_aiapi._tls import shared_context


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


def _in_use_kib() -> float:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    return float(libc.mallinfo2().uordblks) / 1024


def _resident_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def _open_stream(host: str, port: int, ca_file: str) -> Any:
    sock = gevent.socket.create_connection((host, port), timeout=10)
    stream = shared_context(True, ca_file).wrap_socket(sock, server_hostname=host)
    body = orjson.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    stream.sendall(head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    seen = b""
    for _ in range(1000):  # bounded: the mock's first token comes within its TTFT
        seen += stream.recv(65536)
        if b"data:" in seen:
            return stream
    raise AssertionError("no first token")


def main() -> int:
    url, ca_file, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    host, port = url.split("//")[1].rstrip("/").split(":")
    released = []
    if mode == "off":
        for module in (_tls_stream, _tls_writes):  # at the start, and after each request's send
            setattr(module, "releasing_available", lambda: False)  # noqa: B010 - as a test's monkeypatch
    real_release = _tls_buffers.release_idle_buffers

    def counted(sslobj: Any) -> bool:
        freed = real_release(sslobj)
        released.append(freed)
        return freed

    setattr(_tls_stream, "release_idle_buffers", counted)  # noqa: B010
    streams = [_open_stream(host, int(port), ca_file)]  # the first pays for the context and imports
    gc.collect()
    in_use_kib, resident_kib = _in_use_kib(), _resident_kib()
    streams += [_open_stream(host, int(port), ca_file) for _ in range(count)]
    gc.collect()
    figures = {
        "in_use_kib_per_stream": (_in_use_kib() - in_use_kib) / count,
        "resident_kib_per_stream": (_resident_kib() - resident_kib) / count,
        "released": sum(released),
        "release_available": _tls_buffers.releasing_available(),
    }
    print(orjson.dumps(figures).decode())
    for stream in streams:
        stream.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
