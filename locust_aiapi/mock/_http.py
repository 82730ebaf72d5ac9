"""A deliberately tiny HTTP/1.1 server side: read one request, write one response.

Only what an API mock needs: Content-Length or chunked request bodies, `Expect: 100-continue`,
keep-alive, and chunked streaming responses where every event leaves in its own `sendall` (no
buffering, so a chunk is on the wire the moment it is due).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import BinaryIO, Protocol

MAX_LINE_BYTES = 65_536
MAX_HEADERS = 100
MAX_BODY_BYTES = 64 * 1024 * 1024

Headers = list[tuple[str, str]]


class HttpProtocolError(Exception):
    """The peer sent bytes that are not an HTTP/1.x request we can serve; answer 400 and close."""


class _Socket(Protocol):
    def send(self, data: bytes, /) -> int: ...

    def sendall(self, data: bytes, /) -> None: ...


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes
    received_s: float  # perf_counter() right after the body was read

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


def read_request(rfile: BinaryIO, sock: _Socket) -> Request | None:
    """Read one request; None when the peer closed the connection between requests."""
    line = rfile.readline(MAX_LINE_BYTES + 1)
    while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between requests (RFC 9112 §2.2)
        line = rfile.readline(MAX_LINE_BYTES + 1)
    if not line:
        return None
    method, target, version = _parse_request_line(line)
    headers = _read_headers(rfile)
    if headers.get("expect", "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = _read_body(rfile, headers)
    return Request(method, target, version, headers, body, time.perf_counter())


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    if len(line) > MAX_LINE_BYTES or not line.endswith(b"\n"):
        raise HttpProtocolError("request line too long or truncated")
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpProtocolError(f"malformed request line {line[:80]!r}")
    return parts[0], parts[1], parts[2]


def _read_headers(rfile: BinaryIO) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE_BYTES + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line.endswith(b"\n") or b":" not in line:
            raise HttpProtocolError("malformed or truncated header line")
        name, _, value = line.decode("latin-1").partition(":")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    raise HttpProtocolError("too many header lines")


def _read_body(rfile: BinaryIO, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked_body(rfile)
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
        raise HttpProtocolError(f"bad Content-Length {length_text!r}")
    return _read_exactly(rfile, int(length_text))


def _read_chunked_body(rfile: BinaryIO) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = rfile.readline(MAX_LINE_BYTES + 1).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise HttpProtocolError(f"bad chunk size {size_line[:20]!r}") from None
        total += size
        if size < 0 or total > MAX_BODY_BYTES:
            raise HttpProtocolError("chunked body too large")
        if size == 0:
            _read_headers(rfile)  # trailers, ignored
            return b"".join(parts)
        parts.append(_read_exactly(rfile, size))
        _read_exactly(rfile, 2)  # CRLF after the chunk data


def _read_exactly(rfile: BinaryIO, size: int) -> bytes:
    data = rfile.read(size) if size else b""
    if len(data) != size:
        raise HttpProtocolError("connection closed in the middle of the body")
    return data


class ResponseWriter:
    """Writes responses on one connection; each call is one `send` (rarely followed by a `sendall`)."""

    def __init__(self, sock: _Socket, request: Request) -> None:
        self._sock = sock
        # HTTP/1.0 has no chunked encoding: stream raw and let the closing connection end the body.
        self._chunked = request.version == "HTTP/1.1"
        self.keep_alive = request.keep_alive
        self.started = False

    def send(self, status: int, headers: Headers, body: bytes) -> None:
        """A complete response with Content-Length."""
        self.started = True
        self._sock.sendall(encode_response(status, headers, body, keep_alive=self.keep_alive))

    def start_stream(self, status: int, headers: Headers, first_data: bytes) -> None:
        """Status line and headers, together with the first piece of the body."""
        if self._chunked:
            headers = [*headers, ("transfer-encoding", "chunked")]
        else:
            self.keep_alive = False
        self.started = True
        self._sock.sendall(_head(status, headers, self.keep_alive) + self._frame(first_data))

    def send_data(self, data: bytes) -> None:
        frame = self._frame(data)
        # One plain `send` almost always takes a whole chunk: gevent's `sendall` costs a Python layer
        # more and a `getsockopt` system call per chunk, which adds up at 20k chunks/s.
        sent = self._sock.send(frame)
        if sent < len(frame):
            self._sock.sendall(frame[sent:])

    def end_stream(self, final_data: Sequence[bytes] = ()) -> None:
        """Send the last pieces of the body, each in its own chunk, and terminate the body cleanly
        at the HTTP level (the zero-length last chunk), all in one `sendall`."""
        tail = b"".join(self._frame(data) for data in final_data)
        self._sock.sendall(tail + b"0\r\n\r\n" if self._chunked else tail)

    def _frame(self, data: bytes) -> bytes:
        if not self._chunked or not data:
            return data
        return b"%x\r\n%b\r\n" % (len(data), data)


def encode_response(status: int, headers: Headers, body: bytes, *, keep_alive: bool) -> bytes:
    """A complete response with Content-Length, as bytes."""
    return _head(status, [*headers, ("content-length", str(len(body)))], keep_alive) + body


def _head(status: int, headers: Headers, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_phrase(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _phrase(status: int) -> str:
    # 529 is not in the IANA registry (so not in HTTPStatus), but Anthropic sends it
    return "Site Overloaded" if status == 529 else HTTPStatus(status).phrase
