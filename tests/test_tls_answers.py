"""Answers OpenSSL must send while a body is read (a TLS 1.2 renegotiation the server asks for, a TLS 1.3
key update): sent from the hub when they go out at once, else by the user's greenlet, which then reads
the rest of the body; and a renegotiation behind a body's end does not break the next request. Real
loopback TLS servers (``SSL_renegotiate`` / ``SSL_key_update`` through ctypes on the server side)."""

from __future__ import annotations

import _ssl
import contextlib
import ctypes
import socket
import ssl
import struct
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.socket
import pytest
from geventhttpclient import URL

from locust_aiapi import _body_reader, _tls_buffers, _tls_writes
from locust_aiapi._tls import context_factory
from locust_aiapi._tls_stream import RAW_RECV_SIZE, TlsStream

from . import test_tls_stamps
from .test_tls import _chat_once
from .test_tls_stamps import SSE_HEAD, _sse_chunk, pki, tls_server

__all__ = ["pki", "tls_server"]  # the fixtures, used by name

LIB = ctypes.CDLL(_ssl.__file__)
LIB.SSL_renegotiate.argtypes = [ctypes.c_void_p]
LIB.SSL_renegotiate_pending.argtypes = [ctypes.c_void_p]
END = b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"


def _ssl_ptr(tls: Any) -> int:
    return ctypes.c_void_p.from_address(id(tls._sslobj) + _tls_buffers._pointer_offset).value


def _hello_request(tls: Any) -> int:
    """Ask for a renegotiation: the HelloRequest is written. Returns the server's ``SSL *``."""
    ptr = _ssl_ptr(tls)
    LIB.SSL_renegotiate(ptr)
    tls.do_handshake()
    return ptr


def _wait_for_the_new_handshake(tls: Any, ptr: int, deadline_s: float = 3.0) -> bool:
    """Send nothing more until the client's handshake completed (as a server that renegotiates for a
    client certificate does). True once it did."""
    tls.settimeout(0.05)
    end = time.monotonic() + deadline_s
    while LIB.SSL_renegotiate_pending(ptr) and time.monotonic() < end:
        try:
            if tls.recv(1) == b"":
                return False  # the client hung up
        except OSError:
            pass
    tls.settimeout(5)
    return not LIB.SSL_renegotiate_pending(ptr)


def _chat_timed(port: int, pki: dict[str, Path]) -> tuple[Any, float]:
    """One streamed chat (no retry, 1 s timeout) and how long it took."""
    began = time.monotonic()
    record = _chat_once(f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])), 0, 1.0)
    return record, time.monotonic() - began


@pytest.fixture
def tls12(monkeypatch: Any) -> None:
    _servers_speak_tls12(monkeypatch)


def _servers_speak_tls12(monkeypatch: Any) -> None:
    """The test servers at most TLS 1.2: renegotiation exists there."""
    real = test_tls_stamps._server_context

    def make(*args: Any) -> ssl.SSLContext:
        context = real(*args)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context

    monkeypatch.setattr(test_tls_stamps, "_server_context", make)


@pytest.fixture
def kernel_full_once(monkeypatch: Any) -> dict[str, int]:
    return _kernel_full_once(monkeypatch)


def _kernel_full_once(monkeypatch: Any) -> dict[str, int]:
    """The hub's first non-blocking send finds the kernel's send buffer full (send() -> EAGAIN): what
    _send_out(wait=False) does then, without the real send. Later sends are real."""
    real = _tls_writes.TlsWrites._send_out
    seen = {"eagain": 0, "flush_sends": 0}

    def send_out(self: Any, wait: bool = True) -> None:
        if not wait and not seen["eagain"]:
            seen["eagain"] += 1
            self._unsent = self._unsent + self._outgoing.read()  # the BlockingIOError branch
            return
        real(self, wait)

    real_flush = _body_reader.BodyReader.flush_sends

    def flush(self: Any) -> None:
        seen["flush_sends"] += 1
        real_flush(self)

    monkeypatch.setattr(_tls_writes.TlsWrites, "_send_out", send_out)
    monkeypatch.setattr(_body_reader.BodyReader, "flush_sends", flush)
    return seen


@pytest.mark.parametrize("full", [False, True], ids=["send-goes-out", "kernel-full"])
def test_an_answer_to_a_hello_request_that_came_alone_is_sent_even_when_it_must_wait(
    pki: dict[str, Path], tls_server: Any, tls12: None, monkeypatch: Any, full: bool
) -> None:
    """The HelloRequest comes in a raw read of its own (no data: ``recvmsg_ready`` raises BlockingIOError);
    the server sends nothing more until our ClientHello: were it left unsent, both would wait."""
    kernel_full_once = _kernel_full_once(monkeypatch) if full else {"eagain": 1}
    done = {}

    def server(tls: Any) -> None:
        tls.recv(65536)
        tls.sendall(SSE_HEAD + _sse_chunk(0))
        gevent.sleep(0.05)
        done["renegotiated"] = _wait_for_the_new_handshake(tls, _hello_request(tls))
        tls.sendall(_sse_chunk(1) + END)
        with contextlib.suppress(OSError):
            tls.recv(1)

    record, took = _chat_timed(tls_server(server), pki)
    assert kernel_full_once["eagain"] == 1
    assert record.ok, (record.failure_kind, record.failure_message, took, done)


def test_an_answer_that_must_wait_behind_data_is_handed_to_the_greenlet(
    pki: dict[str, Path], tls_server: Any, tls12: None, kernel_full_once: dict[str, int]
) -> None:
    """Data and the HelloRequest in one raw read (corked): the greenlet sends the answer, reads the rest."""
    done = {}

    def server(tls: Any) -> None:
        tls.recv(65536)
        tls.sendall(SSE_HEAD + _sse_chunk(0))
        gevent.sleep(0.05)
        tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        tls.sendall(_sse_chunk(1))
        ptr = _hello_request(tls)
        tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        done["renegotiated"] = _wait_for_the_new_handshake(tls, ptr)
        for i in range(2, 6):
            gevent.sleep(0.02)
            tls.sendall(_sse_chunk(i))
        tls.sendall(END)
        with contextlib.suppress(OSError):
            tls.recv(1)

    record, took = _chat_timed(tls_server(server), pki)
    assert kernel_full_once["flush_sends"] == 1
    assert record.ok, (record.failure_kind, record.failure_message, took, done)
    assert len(record.token_chunk_times_s) == 6


def _chat_twice(url: str, factory: Any, timeout_s: float = 1.0, pooled: list[int] | None = None) -> list[Any]:
    """Two streamed chats on one pool; ``pooled``: the idle connections it holds after each."""
    from geventhttpclient.client import HTTPClientPool

    from locust_aiapi._client import AIClient, ChatRequest
    from locust_aiapi._retry import RetryPolicy
    from locust_aiapi.dialects import OPENAI

    records: list[Any] = []
    pool = HTTPClientPool(
        ssl_context_factory=factory, insecure=False, network_timeout=timeout_s, connection_timeout=timeout_s
    )
    client = AIClient(
        pool=pool,
        headers={"Authorization": "Bearer x"},
        dialect=OPENAI,
        retry=RetryPolicy(0, 0.01, 0.01),
        report=records.append,
    )
    request = ChatRequest(
        "chat", url + "/v1/chat/completions", "m", [{"role": "user", "content": "hi"}], True
    )
    for _ in range(2):
        client.chat(request)
        if pooled is not None:
            pooled.append(pool.get_client(URL(url))._connection_pool._socket_queue.qsize())
    pool.close()
    return records


@pytest.mark.parametrize("full", [False, True], ids=["send-goes-out", "kernel-full"])
@pytest.mark.parametrize("kind", ["renegotiation", "key-update"])
def test_an_answer_behind_the_end_of_a_body_then_the_next_request(
    pki: dict[str, Path], tls_server: Any, monkeypatch: Any, full: bool, kind: str
) -> None:
    """The body's end and the server's HelloRequest / KeyUpdate in one raw read; the next request goes
    on the same connection (keep-alive)."""
    if kind == "renegotiation":
        _servers_speak_tls12(monkeypatch)
    if full:
        _kernel_full_once(monkeypatch)
    LIB.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
    served = []

    def server(tls: Any) -> None:
        for n in range(2):
            request = tls.recv(65536)
            served.append(len(request))
            tls.sendall(SSE_HEAD + _sse_chunk(0))
            gevent.sleep(0.05)
            tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            if n == 0 and kind == "renegotiation":
                tls.sendall(_sse_chunk(1) + END)
                _hello_request(tls)  # behind the end
            elif n == 0:
                LIB.SSL_key_update(_ssl_ptr(tls), 1)  # SSL_KEY_UPDATE_REQUESTED: sent with the next write
                tls.sendall(_sse_chunk(1) + END)
            else:
                tls.sendall(_sse_chunk(1) + END)
            tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        with contextlib.suppress(OSError):
            tls.recv(1)

    port = tls_server(server)
    records = _chat_twice(f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])))
    assert all(r.ok for r in records), [(r.failure_kind, r.failure_message) for r in records]


def test_an_answer_the_reset_connection_refuses_loses_no_data_and_no_later_request(
    pki: dict[str, Path], tls_server: Any, tls12: None
) -> None:
    """The server's last records and a HelloRequest, then a reset: our answer (a ClientHello) cannot be
    sent (ECONNRESET / EPIPE), yet the body that came is whole and counts; the dead connection is not
    pooled, so the next request goes on a new one and succeeds."""
    connections = []

    def server(tls: Any) -> None:
        connections.append(tls)
        tls.recv(65536)
        tls.sendall(SSE_HEAD + _sse_chunk(0))
        gevent.sleep(0.05)
        if len(connections) == 1:  # no yield from here to the reset: it is in before the client reads
            tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            tls.sendall(_sse_chunk(1) + END)
            _hello_request(tls)
            tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # closed with linger 0: a reset
        tls.sendall(_sse_chunk(1) + END)
        with contextlib.suppress(OSError):
            tls.recv(1)

    port = tls_server(server)
    pooled: list[int] = []
    records = _chat_twice(
        f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])), pooled=pooled
    )
    assert [r.ok for r in records] == [True, True], [(r.failure_kind, r.failure_message) for r in records]
    assert [len(r.token_chunk_times_s) for r in records] == [2, 2]
    assert len(connections) == 2
    assert pooled == [0, 1]  # the broken connection was closed, not kept for the next request


def _idle_stream() -> TlsStream:
    """A TlsStream over an unconnected socket: its own logic, with the network stubbed below."""
    return TlsStream(gevent.socket.socket(), ssl.create_default_context(), "localhost")


@pytest.mark.parametrize("error", [TimeoutError("timed out"), OSError(9, "Bad file descriptor")])
def test_an_answer_that_fails_otherwise_than_by_a_refusal_is_raised(monkeypatch: Any, error: OSError) -> None:
    """The body's timer (TimeoutError is an OSError) or a close() elsewhere must end the read, not be
    taken for a refused answer: swallowed, the body's deadline would be lost."""

    def send_out(self: Any, wait: bool = True) -> None:
        raise error

    monkeypatch.setattr(TlsStream, "_send_out", send_out)
    stream = _idle_stream()
    try:
        with pytest.raises(type(error)):
            stream._answer(True, b"data")
        assert not stream.write_failed
        monkeypatch.setattr(TlsStream, "_send_out", _refuse)
        with pytest.raises(ConnectionResetError):
            stream._answer(True, None)  # a refusal with no data: nothing to keep, raised
        stream._answer(False, b"data")  # with data: kept, the connection marked
        assert stream.write_failed
    finally:
        stream._sock.close()


def _refuse(self: Any, wait: bool = True) -> None:
    raise ConnectionResetError(104, "Connection reset by peer")


def test_a_refused_answer_after_a_full_read_in_the_hub_keeps_the_records_before_it(monkeypatch: Any) -> None:
    """``_decrypt_all``: a first read of 64 KiB, then a read whose only news is an answer the
    connection refuses: the 64 KiB are returned, not lost."""
    reads = iter([b"x" * RAW_RECV_SIZE])

    def decrypt(self: Any, size: int, wait: bool = True) -> bytes | None:
        for data in reads:
            return data
        self._answer(wait, None)
        return None

    monkeypatch.setattr(TlsStream, "_decrypt", decrypt)
    monkeypatch.setattr(TlsStream, "_send_out", _refuse)
    stream = _idle_stream()
    try:
        assert stream._decrypt_all() == b"x" * RAW_RECV_SIZE
        assert stream.write_failed
    finally:
        stream._sock.close()
