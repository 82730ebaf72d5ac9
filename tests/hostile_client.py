"""A tiny raw HTTP/1.1 client for testing the hostile server itself: bounded in bytes and seconds.

It trusts nothing and interprets as little as possible, so a test sees exactly the bytes on the wire.
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from tests.hostile_server import HostileServer

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Head:
    status: int
    headers: dict[str, str]  # lower-cased names; a repeated name keeps its last value


class RawClient:
    """One connection; every read has a byte cap and the socket a timeout."""

    def __init__(self, server: HostileServer, tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
        self.sock = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        self.buffer = bytearray()
        self.received = 0  # every byte read off the socket

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(
        self, payload: Any = None, path: str = "/v1/chat/completions", key: str = "sk-test", **headers: str
    ) -> None:
        body = json.dumps(payload if payload is not None else chat_body()).encode()
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {key}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}"]  # fmt: skip
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.received += len(data)
        self.buffer += data
        return bool(data)

    def read_until(self, marker: bytes, max_bytes: int) -> bytes | None:
        """Bytes up to and including ``marker``; None if ``max_bytes`` arrive (or EOF) without it."""
        while (at := self.buffer.find(marker)) < 0:
            if len(self.buffer) >= max_bytes or not self._fill():
                return None
        data = bytes(self.buffer[: at + len(marker)])
        del self.buffer[: at + len(marker)]
        return data

    def read_exact(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise EOFError(f"EOF after {len(self.buffer)} of {count} bytes")
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def read_to_eof(self, max_bytes: int) -> bytes:
        while len(self.buffer) < max_bytes and self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def head(self, max_bytes: int = 65536) -> Head:
        raw = self.read_until(b"\r\n\r\n", max_bytes)
        assert raw is not None, "no end of headers"
        status_line, *lines = raw.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Head(int(status_line.split(" ")[1]), headers)

    def body(self, head: Head, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        if "content-length" in head.headers:
            return self.read_exact(int(head.headers["content-length"]))
        if head.headers.get("transfer-encoding") == "chunked":
            return self._chunked(max_bytes)
        return self.read_to_eof(max_bytes)

    def _chunked(self, max_bytes: int) -> bytes:
        parts = bytearray()
        while True:
            size_line = self.read_until(b"\r\n", 64)
            assert size_line is not None, "bad chunk size line"
            size = int(size_line, 16)
            data = self.read_exact(size + 2)
            assert data.endswith(b"\r\n"), "chunk without CRLF"
            if size == 0:
                return bytes(parts)
            parts += data[:-2]
            assert len(parts) <= max_bytes, "chunked body over the cap"

    def response(self, max_bytes: int = 64 * 1024 * 1024) -> tuple[Head, bytes]:
        head = self.head()
        return head, self.body(head, max_bytes)


def chat_body(stream: bool = True) -> dict[str, Any]:
    return {"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}], "stream": stream,
            "stream_options": {"include_usage": True}}  # fmt: skip


def sse_data(body: bytes) -> list[str]:
    """The ``data:`` values of an SSE body, split on blank lines (comments dropped)."""
    values = []
    for block in body.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                values.append(line[6:].decode())
    return values


def payloads(body: bytes) -> list[Any]:
    """The JSON payloads of an SSE body up to ``[DONE]`` (which is not included)."""
    data = sse_data(body)
    end = data.index("[DONE]") if "[DONE]" in data else len(data)
    return [json.loads(value) for value in data[:end]]
