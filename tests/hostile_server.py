"""A real loopback HTTP/1.1 server that misbehaves on purpose, one scripted *scenario* per server.

Plain blocking sockets, one daemon thread per connection, so a scenario is straight-line code that writes
raw bytes (``conn.write``) and is free to break every rule of HTTP. The server records what it received and
what it wrote, so a test compares the client's figures with the wire's. Scenarios live in
``hostile_scenarios``; this module knows only sockets, request framing and the records.

A write to a client that has gone raises ``ClientGone``: the server catches it, marks the request
``client_closed`` and stops writing, so an endless scenario ends when the client closes. ``close()`` shuts
every socket down (which wakes any thread blocked in ``sendall``/``recv``) and joins every thread.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson

MAX_REQUEST_HEAD_BYTES = 64 * 1024
MAX_REQUEST_BODY_BYTES = 16 * 1024 * 1024
_RECV_BYTES = 64 * 1024


class ClientGone(Exception):
    """The client closed (or reset) the connection, or the server is closing: stop writing."""


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    version: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in arrival order
    body: bytes
    connection_id: int  # 1 for the first connection accepted, 2 for the next ...

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def api_key(self) -> str | None:
        """The credential as the client sent it: a Bearer token, ``api-key`` or ``x-api-key``."""
        authorization = self.header("authorization")
        if authorization and authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        return self.header("api-key") or self.header("x-api-key")


@dataclass(frozen=True)
class Served:
    """One request as the server answered it, published once its scenario has returned."""

    request: ReceivedRequest
    bytes_written: int
    token_chunks: int  # stream chunks that carried a token delta (empty text included)
    client_closed: bool  # the client went away before the scenario finished writing
    notes: Mapping[str, int] = field(default_factory=dict)  # scenario-specific counts
    duration_s: float = 0.0


Scenario = Callable[[ReceivedRequest, "Conn"], None]


class Conn:
    """What a scenario writes to: counts every byte, raises ``ClientGone`` when nobody listens."""

    def __init__(self, sock: socket.socket, stopping: threading.Event, connection_id: int) -> None:
        self.sock = sock
        self.connection_id = connection_id
        self._stopping = stopping
        self._buffer = bytearray()
        self.bytes_written = 0
        self.token_chunks = 0
        self.notes: dict[str, int] = {}
        self.keep_alive = True  # a scenario that ends its body by closing sets this to False

    def write(self, data: bytes) -> None:
        if self._stopping.is_set():
            raise ClientGone("server closing")
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as error:  # EPIPE, ECONNRESET, or a socket shut down by close()
            raise ClientGone(str(error)) from error
        self.bytes_written += len(data)

    def note(self, name: str, count: int = 1) -> None:
        self.notes[name] = self.notes.get(name, 0) + count

    def sleep(self, seconds: float) -> None:
        """Sleep, but notice a closing server or a client that has gone (EOF) meanwhile."""
        if self.wait_closed(seconds):
            raise ClientGone("client closed while the server slept")

    def wait_closed(self, timeout_s: float) -> bool:
        """True when the client closed (EOF or error) or the server stopped within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if self._stopping.is_set():
                return True
            try:
                readable, _, _ = select.select([self.sock], [], [], min(left, 0.05))
                if readable:
                    data = self.sock.recv(_RECV_BYTES)
                    if not data:
                        return True
                    self._buffer += data  # a pipelined request: keep it for the next read
            except (OSError, ValueError, ssl.SSLError):
                return True
        return self._stopping.is_set()

    def read_request(self) -> ReceivedRequest | None:
        """The next request on this connection, or None on a clean EOF before one began."""
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_REQUEST_HEAD_BYTES:
                raise ClientGone("request head too large")
            if not self._fill():
                if self._buffer:
                    raise ClientGone("EOF inside a request head")
                return None
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        method, path, version, headers = _parse_head(head)
        length = int(dict(headers).get("content-length", "0"))
        if not 0 <= length <= MAX_REQUEST_BODY_BYTES:
            raise ClientGone(f"bad Content-Length {length}")
        while len(self._buffer) < length:
            if not self._fill():
                raise ClientGone("EOF inside a request body")
        body, self._buffer = bytes(self._buffer[:length]), self._buffer[length:]
        if (dict(headers).get("connection") or "").lower() == "close" or version == "HTTP/1.0":
            self.keep_alive = False
        return ReceivedRequest(method, path, version, headers, body, self.connection_id)

    def _fill(self) -> bool:
        if self._stopping.is_set():
            return False
        try:
            data = self.sock.recv(_RECV_BYTES)
        except (OSError, ValueError):
            return False
        self._buffer += data
        return bool(data)


def _parse_head(head: bytes) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ClientGone(f"bad request line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ClientGone(f"bad header line {line!r}")
        headers.append((name.strip().lower(), value.strip()))
    return parts[0], parts[1], parts[2], tuple(headers)


class HostileServer:
    """``HostileServer(scenario, ssl_context=None)``: serves ``scenario`` on 127.0.0.1, a free port."""

    def __init__(self, scenario: Scenario, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.scenario = scenario
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[ReceivedRequest] = []
        self._served: list[Served] = []
        self._tls_errors: list[str] = []
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.connections_accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # the accept loop looks at the stop flag this often
        self.port: int = self._listener.getsockname()[1]
        self._start_thread(self._accept_loop, "hostile-accept")

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://127.0.0.1:{self.port}"

    @property
    def requests(self) -> tuple[ReceivedRequest, ...]:
        """Every request received, in order, as soon as it was read (before it was answered)."""
        with self._lock:
            return tuple(self._requests)

    @property
    def served(self) -> tuple[Served, ...]:
        with self._lock:
            return tuple(self._served)

    @property
    def tls_errors(self) -> tuple[str, ...]:
        """Failed TLS handshakes (such a connection never got as far as reading a request)."""
        with self._lock:
            return tuple(self._tls_errors)

    def wait_served(self, count: int = 1, timeout_s: float = 10.0) -> tuple[Served, ...]:
        deadline = time.monotonic() + timeout_s
        while len(self.served) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.served)} of {count} requests served in {timeout_s} s")
            time.sleep(0.01)
        return self.served

    def live_threads(self) -> list[threading.Thread]:
        return [thread for thread in self._threads if thread.is_alive()]

    def close(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in sendall or recv
        deadline = time.monotonic() + timeout_s
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._listener.close()
        if alive := self.live_threads():
            raise RuntimeError(f"hostile server threads still running: {[t.name for t in alive]}")

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start_thread(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._lock:
                self.connections_accepted += 1
                connection_id = self.connections_accepted
                self._sockets.add(sock)
            self._start_thread(self._serve_connection, f"hostile-conn-{connection_id}", sock, connection_id)

    def _serve_connection(self, raw: socket.socket, connection_id: int) -> None:
        sock = raw
        try:
            if self._ssl_context is not None:
                sock = self._handshake(raw)
                with self._lock:  # wrap_socket detached ``raw``: close() must shut the TLS socket down
                    self._sockets.discard(raw)
                    self._sockets.add(sock)
                if self._stopping.is_set():  # close() may have looked at the set before the swap
                    raise ClientGone("server closing")
            conn = Conn(sock, self._stopping, connection_id)
            while conn.keep_alive and not self._stopping.is_set():
                request = conn.read_request()
                if request is None:
                    break
                with self._lock:
                    self._requests.append(request)
                self._answer(request, conn)
        except (ClientGone, ssl.SSLError, OSError):
            pass
        finally:
            with self._lock:
                self._sockets.discard(raw)
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _handshake(self, raw: socket.socket) -> socket.socket:
        assert self._ssl_context is not None
        try:
            return self._ssl_context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as error:
            with self._lock:
                self._tls_errors.append(str(error))
            raise

    def _answer(self, request: ReceivedRequest, conn: Conn) -> None:
        before_bytes, before_tokens, conn.notes = conn.bytes_written, conn.token_chunks, {}
        started = time.perf_counter()
        client_closed = False
        try:
            self.scenario(request, conn)
        except ClientGone:
            client_closed = not self._stopping.is_set()
            conn.keep_alive = False
        served = Served(
            request=request,
            bytes_written=conn.bytes_written - before_bytes,
            token_chunks=conn.token_chunks - before_tokens,
            client_closed=client_closed,
            notes=dict(conn.notes),
            duration_s=time.perf_counter() - started,
        )
        with self._lock:
            self._served.append(served)
        if not conn.keep_alive:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)  # a clean FIN: the body ends with the connection
