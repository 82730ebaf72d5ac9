"""`MockServer`: a gevent StreamServer speaking just enough HTTP/1.1, one greenlet per connection."""

from __future__ import annotations

import os
import socket
import ssl
import time
from types import TracebackType
from typing import BinaryIO

import gevent
import gevent.ssl
from gevent.pool import Pool
from gevent.server import StreamServer

from ._app import App
from ._config import MockConfig
from ._errors import ApiError
from ._http import HttpProtocolError, ResponseWriter, encode_response, read_request
from ._record import Recorder

# Linux caps this at net.core.somaxconn (4096 since 5.4); a burst of new connections beyond the
# backlog waits for SYN retransmits (1 s, 3 s, ...) instead of being served.
LISTEN_BACKLOG = 4096
STOP_TIMEOUT_S = 1.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0


class MockServer:
    """An OpenAI-compatible mock API server running in the current thread's gevent hub.

    `start()` returns at once with the base URL; the server then serves whenever the hub runs, e.g.
    while the calling greenlet sleeps, waits, or does gevent-cooperative I/O.
    """

    def __init__(self, config: MockConfig | None = None) -> None:
        self.config = config or MockConfig()
        self._server: StreamServer | None = None
        self._app: App | None = None
        self._connections = Pool()
        self._tls: ssl.SSLContext | None = None
        self.base_url = ""

    def start(self) -> str:
        """Bind, start accepting connections, write the ready file if configured; returns the base URL."""
        if self._server is not None:
            raise RuntimeError("MockServer is already running")
        self._tls = _server_context(self.config)  # before binding: a bad cert or key fails the start
        recorder = Recorder(self.config.record_path) if self.config.record_path else None
        self._app = App(self.config, recorder)
        server = StreamServer(
            (self.config.bind, self.config.port),
            self._handle,
            backlog=LISTEN_BACKLOG,
            spawn=self._connections,
        )
        try:
            server.start()
        except BaseException:
            if recorder is not None:
                recorder.close()
            raise
        self._server = server
        self.base_url = _base_url(self.config.bind, server.server_port, self._tls is not None)
        if self.config.ready_file:
            try:
                _write_atomically(self.config.ready_file, self.base_url)
            except BaseException:
                self.stop()
                raise
        return self.base_url

    def stop(self) -> None:
        """Stop listening, give requests in flight up to a second to finish, close every connection
        (idle keep-alive ones at once), and flush the record file."""
        server, self._server = self._server, None
        if server is None or self._app is None:
            return
        server.close()
        deadline_s = time.monotonic() + STOP_TIMEOUT_S
        while self._app.state.stats.in_flight and time.monotonic() < deadline_s:
            gevent.sleep(0.01)
        self._connections.kill(block=True, timeout=STOP_TIMEOUT_S)
        if self._app.state.recorder is not None:
            self._app.state.recorder.close()

    @property
    def stats(self) -> dict[str, object]:
        """The same counters `GET /mock/stats` returns."""
        return {} if self._app is None else self._app.state.stats.snapshot()

    def __enter__(self) -> MockServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _handle(self, sock: socket.socket, address: tuple[str, int]) -> None:
        # Without TCP_NODELAY, Nagle plus delayed ACK can hold a small chunk back by ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            tls_sock = self._handshake(sock)
            if tls_sock is None:
                return
            sock = tls_sock
        rfile = sock.makefile("rb")
        try:
            self._serve_connection(sock, rfile)
        except OSError:
            pass  # the client went away; nothing to answer
        finally:
            rfile.close()
            sock.close()

    def _handshake(self, sock: socket.socket) -> socket.socket | None:
        """The TLS side of a new connection, or None (counted) if the client gave up on the handshake."""
        assert self._tls is not None and self._app is not None
        sock.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
        try:
            tls_sock = self._tls.wrap_socket(sock, server_side=True)
        except (OSError, ValueError):  # ssl.SSLError is an OSError: an untrusted cert, not TLS at all
            self._app.state.stats.tls_handshake_failures += 1
            sock.close()
            return None
        tls_sock.settimeout(None)
        return tls_sock

    def _serve_connection(self, sock: socket.socket, rfile: BinaryIO) -> None:
        assert self._app is not None
        while True:
            try:
                request = read_request(rfile, sock)
            except HttpProtocolError as error:
                _reject(sock, str(error))
                return
            if request is None:
                return
            writer = ResponseWriter(sock, request)
            self._app.serve(writer, request)
            if not writer.keep_alive:
                return


def _reject(sock: socket.socket, reason: str) -> None:
    """400 for bytes that are not HTTP; the connection closes right after."""
    body = ApiError(400, f"Malformed HTTP request: {reason}").body()
    sock.sendall(encode_response(400, [("content-type", "application/json")], body, keep_alive=False))


def _server_context(config: MockConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context: ssl.SSLContext = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def _base_url(host: str, port: int, tls: bool = False) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def _write_atomically(path: str, text: str) -> None:
    """Write via rename so a process polling for the file never reads half of it."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)
