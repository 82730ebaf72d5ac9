"""Kernel receive stamps over TLS: ``TlsStream`` reads the raw socket with ``recvmsg`` and decrypts in memory.

Real loopback TLS servers in this process (same hub, same ``perf_counter``): one that writes at known
times to a late reader, one that hands out its ciphertext byte by byte, the mock over HTTPS, and servers
that misbehave (no close_notify, garbage, an impostor's certificate, silence).
"""

from __future__ import annotations

import _ssl
import contextlib
import ctypes
import os
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent.server import StreamServer
from geventhttpclient import HTTPClient
from geventhttpclient.url import URL

from locust_aiapi import _rx_stamps as rx
from locust_aiapi import _tls, _tls_buffers
from locust_aiapi._metrics import ttft_ms
from locust_aiapi._records import FailureKind, StampSource
from locust_aiapi._tls import context_factory, shared_context
from locust_aiapi._tls_stream import TlsStream
from locust_aiapi.mock import MockConfig, MockProcess, MockServer

from .test_rx_stamps import BUSY_S, LateReaderServer, _stream_in_three_writes
from .test_tls import PKI_FILES, Impostor, _chat_once, issue_pki

pytestmark = pytest.mark.skipif(not rx.KERNEL_STAMPS_AVAILABLE, reason="no SO_TIMESTAMPNS here")
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    issue_pki(folder)
    return {name: folder / name for name in PKI_FILES}


@pytest.fixture(autouse=True)
def _stamping_on() -> None:
    if not rx._keeper:
        rx.keep_stamping_on()
        time.sleep(0.05)  # the kernel's switch is deferred (see _rx_stamps._keeper)


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> list[TlsStream]:
    """Every TlsStream the shared context hands out."""
    made: list[TlsStream] = []

    class Counted(TlsStream):
        __slots__ = ()

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(_tls, "TlsStream", Counted)
    return made


def _server_context(pki: dict[str, Path], name: str = "server") -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki[f"{name}.pem"]), str(pki[f"{name}.key"]))
    return context


@pytest.fixture
def tls_server(pki: dict[str, Path]) -> Iterator[Callable[[Callable[[Any], None]], int]]:
    """Starts a TLS server whose connections ``handler(tls_socket)`` serves; returns its port."""
    servers: list[StreamServer] = []

    def start(handler: Callable[[Any], None]) -> int:
        context = _server_context(pki)

        def handle(sock: Any, _address: object) -> None:
            sock.settimeout(5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see _tls_late_server
            try:
                with context.wrap_socket(sock, server_side=True) as tls:
                    handler(tls)
            except OSError:
                pass

        server = StreamServer(("127.0.0.1", 0), handle)
        server.start()
        servers.append(server)
        return int(server.server_port)

    yield start
    for server in servers:
        server.stop(timeout=1)


def _connect(port: int, pki: dict[str, Path], timeout_s: float = 5.0) -> TlsStream:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    stream = shared_context(True, str(pki["ca.pem"])).wrap_socket(sock, server_hostname="127.0.0.1")
    assert isinstance(stream, TlsStream)
    assert rx.rx_stamps_enabled(stream)
    return stream


def _read_all(stream: TlsStream, size: int = 65536) -> list[tuple[bytes, float | None]]:
    """Every read until the end: its bytes and its kernel stamp on the perf_counter timeline."""
    clock, reads = rx.RxClock(), []
    for _ in range(100_000):  # bounded: the server closes
        data, _user_s, kernel_s = rx.recv_stamped(stream, size, clock)
        if not data:
            return reads
        reads.append((data, kernel_s))
    raise AssertionError("no end")


# -- stamps: at the write, while the reader was late --------------------------------------------------


def test_a_late_reader_over_https_gets_kernel_stamps_at_the_write(
    pki: dict[str, Path], streams: list[Any]
) -> None:
    handler = LateReaderServer(_stream_in_three_writes())
    port = _tls_late_server(pki, handler)
    url = f"https://127.0.0.1:{port}"
    record = _chat_once(url, context_factory(ca_bundle=str(pki["ca.pem"])), max_retries=0)
    assert record.ok, record.failure_message
    assert len(streams) == 1
    assert record.timestamps is StampSource.KERNEL
    for stamp_s, written_s in zip(record.token_chunk_times_s, handler.written_s, strict=True):
        assert -0.005 < stamp_s - written_s < 0.005
    # the user-space stamps were late by about the busy wait: that is the measured client lag
    assert len(record.client_lags_s) >= 2
    assert all(0.8 * BUSY_S < lag_s < 10 * BUSY_S for lag_s in record.client_lags_s[1:])


def _tls_late_server(pki: dict[str, Path], handler: LateReaderServer) -> int:
    context = _server_context(pki)

    def handle(sock: Any, address: object) -> None:
        sock.settimeout(5)
        # Nagle would hold the head back behind the unacknowledged session tickets until the client's
        # delayed ACK (~40 ms; the kernel stamp showed exactly that): servers that stream set this
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(sock, server_side=True) as tls:
            handler.handle(tls, address)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    _late_servers.append(server)
    return int(server.server_port)


_late_servers: list[StreamServer] = []


@pytest.fixture(autouse=True)
def _stop_late_servers() -> Iterator[None]:
    yield
    while _late_servers:
        _late_servers.pop().stop(timeout=1)


def test_a_streamed_chat_from_the_mock_over_https_is_kernel_stamped(
    pki: dict[str, Path], streams: list[Any]
) -> None:
    config = MockConfig(
        port=0,
        ttft_ms=20,
        itl_ms=5,
        output_tokens=6,
        tls_cert=str(pki["server.pem"]),
        tls_key=str(pki["server.key"]),
    )
    with MockServer(config) as mock:
        record = _chat_once(mock.base_url, context_factory(ca_bundle=str(pki["ca.pem"])))
    assert record.ok, record.failure_message
    assert record.output_tokens == 6
    assert record.timestamps is StampSource.KERNEL
    assert len(streams) == 1 and streams[0].version() in ("TLSv1.3", "TLSv1.2")
    assert streams[0].selected_alpn_protocol() == "http/1.1"
    ttft = ttft_ms(record)
    assert ttft is not None and ttft >= 20.0


# -- reads: what is buffered needs no wait; byte-by-byte and huge records; the end ---------------------


def test_bytes_already_decrypted_come_without_a_wait_and_with_their_reads_stamp(
    pki: dict[str, Path], tls_server: Any
) -> None:
    sent_s: list[float] = []

    def one_record_then_hold(tls: Any) -> None:
        tls.sendall(b"x" * 1000)
        sent_s.append(time.perf_counter())
        gevent.sleep(0.3)

    stream = _connect(tls_server(one_record_then_hold), pki)
    clock = rx.RxClock()
    first, _user_s, first_s = rx.recv_stamped(stream, 10, clock)
    stream.settimeout(0.0)  # a raw read now would raise BlockingIOError: nothing is on the socket
    rest, _user_s, rest_s = rx.recv_stamped(stream, 65536, clock)
    assert (first, rest) == (b"x" * 10, b"x" * 990)
    assert first_s is not None and first_s == rest_s
    assert abs(first_s - sent_s[0]) < 0.005
    with pytest.raises(BlockingIOError):
        stream.recv(10)
    stream.close()


def test_ciphertext_arriving_byte_by_byte_decrypts_stamped_at_its_last_byte(pki: dict[str, Path]) -> None:
    message = b"data: one event, sent as single bytes of ciphertext\n\n"
    sent_s: list[float] = []
    port = _byte_server(pki, message, sent_s)
    stream = _connect(port, pki)
    reads = _read_all(stream)
    stream.close()
    assert b"".join(data for data, _ in reads) == message
    assert len(reads) == 1  # one record, completed by the read of its last byte
    stamp_s = reads[0][1]
    assert stamp_s is not None
    assert abs(stamp_s - sent_s[-1]) < 0.005  # the last byte's arrival, not the first's
    assert sent_s[-1] - sent_s[0] > 0.05


def _bio_handshake(sock: Any, context: ssl.SSLContext) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """The server's side of a handshake over memory BIOs (what it writes then is in our hands)."""
    sock.settimeout(5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    for _ in range(20):  # bounded: a handshake is a few round trips
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            incoming.write(sock.recv(65536))
    sock.sendall(outgoing.read())
    return tls, incoming, outgoing


def _byte_server(pki: dict[str, Path], message: bytes, sent_s: list[float]) -> int:
    """Handshakes over memory BIOs, then sends one record of ``message`` one ciphertext byte at a time."""
    context = _server_context(pki)

    def handle(sock: Any, _address: object) -> None:
        tls, _incoming, outgoing = _bio_handshake(sock, context)
        gevent.sleep(0.05)  # the client has read the tickets
        tls.write(message)
        for byte in outgoing.read():
            sock.sendall(bytes([byte]))
            sent_s.append(time.perf_counter())
            gevent.sleep(0.002)  # the client reads the partial record meanwhile
        sock.close()  # no close_notify

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    _late_servers.append(server)
    return int(server.server_port)


def test_huge_writes_arrive_whole_in_bounded_reads_each_stamped(
    pki: dict[str, Path], tls_server: Any
) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB: 64 records of 16 KiB

    def huge(tls: Any) -> None:
        for _ in range(8):
            tls.sendall(block)

    stream = _connect(tls_server(huge), pki)
    clock, total, peak_kib, stamped = rx.RxClock(), 0, 0, True
    expected = memoryview(block * 2)  # made once: a copy per read would itself be MiBs of RSS
    before_kib = _rss_kib()
    for count in range(100_000):  # bounded: the server closes
        data, _user_s, kernel_s = rx.recv_stamped(stream, 65536, clock)
        if not data:
            break
        offset = total % len(block)
        assert expected[offset : offset + len(data)] == data
        total += len(data)
        stamped = stamped and kernel_s is not None
        if count % 8 == 0:
            peak_kib = max(peak_kib, _rss_kib())
    stream.close()
    assert total == 8 * len(block)
    assert stamped
    # peak RSS while 8 MiB went through (the server's side too): buffers of ~64 KiB, not the stream
    assert peak_kib - before_kib < 4 * 1024, (before_kib, peak_kib)


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_an_open_tls_stream_costs_little_memory(pki: dict[str, Path]) -> None:
    """300 connections handshaken and idle: the client side's RSS per connection (server in a subprocess)."""
    tls = ["--tls-cert", str(pki["server.pem"]), "--tls-key", str(pki["server.key"])]
    with MockProcess(tls) as mock:
        port = int(mock.url.rsplit(":", 1)[1])
        _connect(port, pki).close()  # the first connection's one-time costs are not per connection
        before_kib = _rss_kib()
        streams = [_connect(port, pki) for _ in range(300)]
        per_connection_kib = (_rss_kib() - before_kib) / len(streams)
        for stream in streams:
            stream.close()
    assert per_connection_kib < 64, per_connection_kib


@pytest.mark.parametrize("notify", [True, False], ids=["close_notify", "no_close_notify"])
def test_the_end_reads_as_empty_with_or_without_close_notify(
    pki: dict[str, Path], tls_server: Any, notify: bool
) -> None:
    def say_and_close(tls: Any) -> None:
        tls.sendall(b"last words")
        if notify:
            tls.unwrap()

    stream = _connect(tls_server(say_and_close), pki)
    assert b"".join(data for data, _ in _read_all(stream)) == b"last words"
    assert stream.recv(10) == b""  # and stays ended, without a wait
    stream.close()


# -- failures: classified as before -----------------------------------------------------------------------


def _garbage_server(payload: bytes) -> int:
    def handle(sock: Any, _address: object) -> None:
        sock.settimeout(5)
        sock.sendall(payload)
        gevent.sleep(0.2)
        sock.close()

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    _late_servers.append(server)
    return int(server.server_port)


def test_a_server_sending_garbage_is_tls_error_and_not_retried(
    pki: dict[str, Path], streams: list[Any]
) -> None:
    port = _garbage_server(b"\x17\x03\x03\x00\x05hello" + b"GARBAGE" * 100)
    record = _chat_once(f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])))
    assert len(streams) == 1
    assert record.failure_kind is FailureKind.TLS_ERROR, record.failure_message
    assert record.attempts == 1


def test_garbage_in_the_middle_of_a_stream_is_tls_error(pki: dict[str, Path], tls_server: Any) -> None:
    def garbage_after_data(tls: Any) -> None:
        tls.sendall(b"fine")
        gevent.sleep(0.05)
        # past OpenSSL, on the descriptor: an application-data record that cannot decrypt
        os.write(tls.fileno(), b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
        gevent.sleep(0.2)

    stream = _connect(tls_server(garbage_after_data), pki)
    assert stream.recv(100) == b"fine"
    with pytest.raises(ssl.SSLError) as raised:
        stream.recv(100)
    assert not isinstance(raised.value, (ssl.SSLEOFError, ssl.SSLZeroReturnError))  # a tls_error
    stream.close()


def test_an_impostor_over_a_tls_stream_is_tls_error_and_gets_not_one_byte(
    pki: dict[str, Path], streams: list[Any]
) -> None:
    with Impostor(pki["impostor.pem"], pki["impostor.key"]) as impostor:
        record = _chat_once(impostor.url, context_factory(ca_bundle=str(pki["ca.pem"])))
        gevent.sleep(0.2)
    assert len(streams) == 1
    assert record.failure_kind is FailureKind.TLS_ERROR
    assert record.failure_message == "certificate verify failed: unable to get local issuer certificate"
    assert impostor.connections == 1 and impostor.application_bytes == b""


def test_a_handshake_the_server_never_answers_times_out(streams: list[Any]) -> None:
    def silent(sock: Any, _address: object) -> None:
        gevent.sleep(2)
        sock.close()

    server = StreamServer(("127.0.0.1", 0), silent)
    server.start()
    _late_servers.append(server)
    started_s = time.monotonic()
    record = _chat_once(f"https://127.0.0.1:{server.server_port}", context_factory(), 0, 0.5)
    assert len(streams) == 1
    assert (record.failure_kind, record.failure_message) == (FailureKind.TIMEOUT, "timed out")
    assert time.monotonic() - started_s < 1.5


def test_a_body_that_stalls_over_tls_is_timed_out_by_the_readers_timer(
    pki: dict[str, Path], tls_server: Any, streams: list[Any]
) -> None:

    def head_then_silence(tls: Any) -> None:
        tls.recv(65536)
        tls.sendall(SSE_HEAD)
        gevent.sleep(2)

    port = tls_server(head_then_silence)
    started_s = time.monotonic()
    record = _chat_once(f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])), 0, 0.5)
    assert len(streams) == 1
    assert (record.failure_kind, record.failure_message) == (FailureKind.TIMEOUT, "timed out")
    assert 0.4 < time.monotonic() - started_s < 1.5


def test_without_kernel_stamps_the_context_hands_out_geventss_ssl_socket(
    pki: dict[str, Path], tls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rx, "KERNEL_STAMPS_AVAILABLE", False)
    port = tls_server(lambda tls: tls.sendall(b"hello"))
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    tls = shared_context(True, str(pki["ca.pem"])).wrap_socket(sock, server_hostname="127.0.0.1")
    assert isinstance(tls, gevent.ssl.SSLSocket) and not rx.rx_stamps_enabled(tls)
    assert tls.recv(10) == b"hello"
    tls.close()


def _close_in_handshake(sock: Any, _address: object) -> None:
    sock.recv(65536)  # the ClientHello
    sock.close()


def _reset_in_handshake(sock: Any, _address: object) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.recv(65536)
    sock.close()


def _garbage(sock: Any, _address: object) -> None:
    sock.sendall(b"\x17\x03\x03\x00\x05hello" + b"GARBAGE" * 100)
    gevent.sleep(0.2)
    sock.close()


@pytest.mark.parametrize("handler", [_close_in_handshake, _reset_in_handshake, _garbage])
def test_a_failure_reads_as_it_did_through_geventss_ssl_socket(
    handler: Callable[[Any, object], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = StreamServer(("127.0.0.1", 0), handler)
    server.start()
    _late_servers.append(server)
    url = f"https://127.0.0.1:{server.server_port}"
    outcomes = []
    for kernel in (True, False):
        monkeypatch.setattr(rx, "KERNEL_STAMPS_AVAILABLE", kernel)
        record = _chat_once(url, context_factory(ca_bundle=None), 0, 1.0)
        outcomes.append((record.failure_kind, record.failure_message))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] in (FailureKind.TLS_ERROR, FailureKind.CONNECTION_ERROR)


def test_a_body_cut_without_close_notify_is_a_connection_error(
    pki: dict[str, Path], tls_server: Any, streams: list[Any]
) -> None:

    def cut(tls: Any) -> None:
        tls.recv(65536)
        tls.sendall(SSE_HEAD + b"40\r\ndata: {")
        # returning closes the socket without a close_notify (as SSLSocket.close does)

    port = tls_server(cut)
    record = _chat_once(f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])), 0, 2.0)
    assert len(streams) == 1
    assert (record.failure_kind, record.failure_message) == (
        FailureKind.CONNECTION_ERROR,
        "connection closed before the end of the response body",
    )


def test_tls12_reads_are_kernel_stamped_too(pki: dict[str, Path]) -> None:
    context = _server_context(pki)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    sent_s: list[float] = []

    def handle(sock: Any, _address: object) -> None:
        sock.settimeout(5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see _tls_late_server
        with context.wrap_socket(sock, server_side=True) as tls:
            for word in (b"one", b"two"):
                tls.sendall(word)
                sent_s.append(time.perf_counter())
                gevent.sleep(0.05)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    _late_servers.append(server)
    with _connect(int(server.server_port), pki) as stream:
        assert stream.version() == "TLSv1.2"
        reads = _read_all(stream)
    assert [data for data, _ in reads] == [b"one", b"two"]
    for (_data, stamp_s), written_s in zip(reads, sent_s, strict=True):
        assert stamp_s is not None and abs(stamp_s - written_s) < 0.005


def test_sni_is_sent_and_a_name_the_certificate_lacks_fails_verification(pki: dict[str, Path]) -> None:
    names: list[str | None] = []
    context = _server_context(pki)
    context.sni_callback = lambda _tls, name, _context: names.append(name)  # type: ignore[assignment,misc,return-value]

    def handle(sock: Any, _address: object) -> None:
        sock.settimeout(5)
        try:
            with context.wrap_socket(sock, server_side=True) as tls:
                tls.sendall(b"hi")
        except OSError:
            pass

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    _late_servers.append(server)
    client_context = shared_context(True, str(pki["ca.pem"]))
    for name in ("localhost", "api.example.invalid"):
        sock = socket.create_connection(("127.0.0.1", server.server_port), timeout=5)
        if name == "localhost":
            with client_context.wrap_socket(sock, server_hostname=name) as stream:
                assert isinstance(stream, TlsStream) and stream.server_hostname == "localhost"
                assert stream.recv(10) == b"hi"
            continue
        with pytest.raises(ssl.SSLCertVerificationError) as failed:
            client_context.wrap_socket(sock, server_hostname=name)
        assert "Hostname mismatch" in failed.value.verify_message
        assert sock.fileno() == -1  # closed by the failed handshake
    assert names == ["localhost", "api.example.invalid"]


def test_records_that_waited_in_one_read_come_together_with_the_newest_stamp(
    pki: dict[str, Path], tls_server: Any
) -> None:
    """A late reader over TLS, as over TCP: one read, both records, the later one's arrival (an upper
    bound for the first, which the stream recorder then counts as a shared read)."""
    sent_s: list[float] = []

    def two_records(tls: Any) -> None:
        for word in (b"first;", b"second;"):
            tls.sendall(word)
            sent_s.append(time.perf_counter())
            gevent.sleep(0.03)
        gevent.sleep(0.2)

    stream = _connect(tls_server(two_records), pki)
    gevent.sleep(0.1)  # the reader is late: both records (and the session tickets) wait in the kernel
    data, _user_s, kernel_s = rx.recv_stamped(stream, 65536, rx.RxClock())
    stream.close()
    assert data == b"first;second;"
    assert kernel_s is not None and abs(kernel_s - sent_s[1]) < 0.005


def test_a_flood_of_session_tickets_lets_other_greenlets_run(pki: dict[str, Path]) -> None:
    """A server may send post-handshake records (tickets, key updates) as fast as the socket takes
    them: reading through them must yield, or no other user reads and no timer (deadlines) fires."""
    import gevent.event
    import gevent.socket

    context = _server_context(pki)
    context.num_tickets = 8000  # ~2 MB of TLS 1.3 NewSessionTicket records before the first byte
    sent = gevent.event.Event()

    def handle(sock: Any, _address: object) -> None:
        sock.settimeout(5)
        with context.wrap_socket(sock, server_side=True) as tls:  # the tickets follow the handshake
            tls.sendall(b"hello")
            sent.set()
            tls.recv(1)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        raw = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)  # all of it waits there
        raw.settimeout(5)
        raw.connect(("127.0.0.1", int(server.server_port)))
        stream = shared_context(True, str(pki["ca.pem"])).wrap_socket(raw, server_hostname="127.0.0.1")
        assert isinstance(stream, TlsStream)
        assert sent.wait(5)
        ticks: list[float] = []
        reading = [True]

        def ticker() -> None:
            while reading[0]:
                ticks.append(time.perf_counter())
                gevent.idle()

        other = gevent.spawn(ticker)
        gevent.idle()
        ticks.clear()  # only the ticks while the tickets are read count
        data, _ancdata, _flags, _address = stream.recvmsg(65536, rx.ANC_SIZE)
        reading[0] = False
        other.join(1)
        stream.close()
    finally:
        server.stop(timeout=1)
    assert data == b"hello"
    assert len(ticks) >= 4  # ~2 MB read: one yield per 256 KiB


class _CountedReads:
    """The non-blocking socket under a gevent socket, counting its ``recvmsg`` calls and those that found
    nothing (EAGAIN: a system call and a raised exception for nothing)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.reads = 0
        self.empty = 0

    def recvmsg(self, *args: Any) -> Any:
        self.reads += 1
        try:
            return self._sock.recvmsg(*args)
        except BlockingIOError:
            self.empty += 1
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_a_stream_at_model_speed_costs_one_raw_read_per_record(pki: dict[str, Path], tls_server: Any) -> None:
    """After a raw read that emptied the socket the next one waits first (as ``BodyReader`` on plain
    TCP): no read that fails with EAGAIN per record."""
    import gevent.socket

    def records_at_model_speed(tls: Any) -> None:
        for index in range(20):
            gevent.sleep(0.01)
            tls.sendall(b"data: token %d\n\n" % index)

    raw = gevent.socket.create_connection(("127.0.0.1", tls_server(records_at_model_speed)), timeout=5)
    counted = raw._sock = _CountedReads(raw._sock)
    stream = shared_context(True, str(pki["ca.pem"])).wrap_socket(raw, server_hostname="127.0.0.1")
    assert isinstance(stream, TlsStream)
    counted.reads = counted.empty = 0  # the handshake's steps do not count
    reads = _read_all(stream)
    stream.close()
    assert b"".join(data for data, _ in reads) == b"".join(b"data: token %d\n\n" % i for i in range(20))
    assert all(stamp_s is not None for _, stamp_s in reads)
    assert counted.empty <= 2, (counted.reads, counted.empty)  # was one per record
    assert counted.reads <= 20 + 4, counted.reads  # one per record, the session tickets, the end


def test_a_raw_read_that_waits_first_still_times_out_under_the_sockets_timeout(
    pki: dict[str, Path], tls_server: Any
) -> None:
    """The wait before a read (after one that emptied the socket) keeps the socket's timeout, as
    gevent's own ``recvmsg`` does; a timeout of 0 still raises at once."""

    def one_record_then_silence(tls: Any) -> None:
        tls.sendall(b"only this")
        gevent.sleep(2)

    stream = _connect(tls_server(one_record_then_silence), pki)
    clock = rx.RxClock()
    data, _user_s, _kernel_s = rx.recv_stamped(stream, 65536, clock)
    assert data == b"only this"  # that raw read emptied the socket: the next one waits first
    stream.settimeout(0.0)
    with pytest.raises(BlockingIOError):
        rx.recv_stamped(stream, 65536, clock)
    stream.settimeout(0.2)
    began_s = time.perf_counter()
    with pytest.raises(TimeoutError):
        rx.recv_stamped(stream, 65536, clock)
    assert 0.15 < time.perf_counter() - began_s < 1.5
    stream.close()


# -- what else a user's session sends over the same context -------------------------------------------


def _echo_length(tls: Any) -> None:
    """Answers each request on the connection with the length of the body it received."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = tls.recv(65536)
            if not data:
                return
            buffer += data
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(buffer) < length:
            buffer += tls.recv(65536)
        body, buffer = buffer[:length], buffer[length:]
        answer = str(len(body)).encode()
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))


def test_a_file_body_is_sent_over_a_tls_stream(pki: dict[str, Path], tls_server: Any, tmp_path: Path) -> None:
    """geventhttpclient sends a file of known size with ``sock.sendfile(body)`` (a user's own upload
    task shares the AI users' TLS context): a TlsStream sends it too, ``WRITE_SLICE`` at a time."""
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"x" * 600_000)  # more than one WRITE_SLICE
    port = tls_server(_echo_length)
    context = shared_context(True, str(pki["ca.pem"]))
    client = HTTPClient.from_url(
        URL(f"https://127.0.0.1:{port}/"), ssl_context_factory=lambda: context, network_timeout=5
    )
    try:
        assert client.post("/", body=b"x" * 1000).read() == b"1000"  # bytes: sendall
        with upload.open("rb") as body:  # a file of known size: geventhttpclient calls sock.sendfile(body)
            assert client.post("/", body=body).read() == b"600000"
    finally:
        client.close()


def test_the_same_bodies_work_over_geventss_ssl_socket(
    pki: dict[str, Path], tls_server: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    """The control: without kernel stamps the context hands out gevent's SSLSocket, which sends them."""
    monkeypatch.setattr(_tls, "enable_rx_stamps", lambda _sock: False)
    test_a_file_body_is_sent_over_a_tls_stream(pki, tls_server, tmp_path)


def test_a_renegotiation_asked_for_behind_data_is_answered_at_once(pki: dict[str, Path]) -> None:
    """TLS 1.2: data and the server's HelloRequest arrive in one raw read, and the server waits for our
    ClientHello. The answer must go out with that read: the client reads on and writes nothing."""
    libssl = ctypes.CDLL(_ssl.__file__)
    libssl.SSL_renegotiate.argtypes = libssl.SSL_renegotiate_pending.argtypes = [ctypes.c_void_p]
    context = _server_context(pki)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    listener = socket.create_server(("127.0.0.1", 0))
    renegotiated: list[int] = []

    def serve() -> None:  # a real thread: blocking stdlib ssl, as a server
        connection, _ = listener.accept()
        with context.wrap_socket(connection, server_side=True) as tls:
            pointer = ctypes.c_void_p.from_address(id(tls._sslobj) + _tls_buffers._pointer_offset).value
            tls.sendall(b"a" * 100)
            libssl.SSL_renegotiate(pointer)
            tls.do_handshake()  # sends the HelloRequest
            tls.settimeout(0.5)
            with contextlib.suppress(OSError):
                tls.recv(1)  # the new handshake with our ClientHello, then a wait for data that never comes
            renegotiated.append(libssl.SSL_renegotiate_pending(pointer))
            tls.sendall(b"b" * 100)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    stream = _connect(listener.getsockname()[1], pki)
    time.sleep(0.1)  # both records are on the socket before the first read
    data = b"".join(chunk for chunk, _stamp in _read_all(stream))
    stream.close()
    server.join(timeout=5)
    listener.close()
    assert data == b"a" * 100 + b"b" * 100
    assert renegotiated == [0]  # the renegotiation completed: our ClientHello went out with that read


# -- the hub reads the body (``_hub_reads``) ------------------------------------------------------------


def _sse_chunk(index: int, padding: int = 0) -> bytes:
    event = b'data: {"choices":[{"index":0,"delta":{"content":"t%d%s"}}]}\n\n' % (index, b"x" * padding)
    return b"%x\r\n%s\r\n" % (len(event), event)


def test_a_streamed_chat_over_https_wakes_its_greenlet_once_not_per_chunk(
    pki: dict[str, Path], tls_server: Any, streams: list[Any]
) -> None:
    from .test_hub_reads import switches_into

    def model_speed(tls: Any) -> None:
        tls.recv(65536)
        tls.sendall(SSE_HEAD)
        for index in range(30):
            gevent.sleep(0.01)
            tls.sendall(_sse_chunk(index))
        tls.sendall(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
        tls.recv(1)  # until the client hangs up

    port = tls_server(model_speed)
    factory = context_factory(ca_bundle=str(pki["ca.pem"]))
    user = gevent.spawn(_chat_once, f"https://127.0.0.1:{port}", factory, 0)
    woken = switches_into(user, user.join)
    record = user.get()
    assert len(streams) == 1 and record.timestamps is StampSource.KERNEL
    assert len(record.token_chunk_times_s) == 30, record.failure_message
    assert woken <= 12, woken  # connect, the handshake's steps, send, the head, the end; not 30+


def test_each_ready_read_decrypts_all_its_raw_read_completed(pki: dict[str, Path], tls_server: Any) -> None:
    """Called once per readiness (``_hub_reads``), ``recvmsg_ready`` leaves no decryptable byte behind:
    only a record's beginning may wait in the BIO, for the raw read that completes it. Anything more
    would wait for a readiness that need not come (the stream's end, already in memory: a timeout)."""
    import select

    # a record per write, ~8 KiB each: a raw read ends inside one, and the partial record grows by 824
    # bytes a read until one raw read completes 9 records, more plaintext than RAW_RECV_SIZE
    chunks = [_sse_chunk(index, padding=8000) for index in range(150)]
    body = b"".join(chunks)

    def burst(tls: Any) -> None:
        tls.recv(1)
        for chunk in chunks:
            tls.sendall(chunk)
        tls.recv(1)  # until the client hangs up

    stream = _connect(tls_server(burst), pki)
    stream.raw_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    stream.sendall(b"go")
    gevent.sleep(0.3)  # all of it waits in the socket: each raw read takes a full RAW_RECV_SIZE
    received = []
    for _ in range(100):  # bounded
        if not select.select([stream.raw_socket._sock], [], [], 0.2)[0]:
            break
        with contextlib.suppress(BlockingIOError):
            received.append(stream.recvmsg_ready(65536, rx.ANC_SIZE)[0])
        assert stream.pending() == 0 and stream._incoming.pending < 16 * 1024 + 5 + 256
    stream.close()
    assert b"".join(received) == body


def test_a_body_sent_with_the_head_in_one_burst_is_read_whole_at_once(
    pki: dict[str, Path], tls_server: Any
) -> None:
    """A buffering proxy: head and the whole (>16 KiB) body in one write, then the connection idles. The
    head's reads leave records in memory that no readiness of the socket announces."""
    body = b"".join(_sse_chunk(i, padding=200) for i in range(100)) + b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"

    def burst(tls: Any) -> None:
        tls.recv(65536)
        tls.sendall(SSE_HEAD + body)
        tls.recv(1)  # keep-alive: until the client hangs up

    port = tls_server(burst)
    began = time.monotonic()
    record = _chat_once(f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])), 0, 1.0)
    took = time.monotonic() - began
    assert record.ok, (record.failure_kind, record.failure_message, len(record.token_chunk_times_s), took)
    assert len(record.token_chunk_times_s) == 100


def test_a_read_until_close_body_ends_with_a_close_notify_read_with_its_data(
    pki: dict[str, Path], tls_server: Any
) -> None:
    """A read-until-close body: the last data and close_notify in one raw read; the server then waits
    for our close_notify (unwrap) and keeps TCP open."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    events = (
        b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )

    def close_notify(tls: Any) -> None:
        tls.recv(65536)
        tls.sendall(head)
        gevent.sleep(0.1)
        tls.sendall(events)
        tls.unwrap()  # close_notify, written with no yield after the data; then waits for ours

    port = tls_server(close_notify)
    began = time.monotonic()
    record = _chat_once(f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])), 0, 1.0)
    took = time.monotonic() - began
    assert record.ok, (record.failure_kind, record.failure_message, len(record.token_chunk_times_s), took)


def _split_record_server(pki: dict[str, Path], chunks: list[bytes]) -> int:
    """Handshakes over memory BIOs, reads the request, then sends the head and each chunk as one TLS
    record, each TCP write 10 ms apart holding the end of one record and the start of the next (records
    wider than a segment, as on a real network)."""
    context = _server_context(pki)

    def handle(sock: Any, _address: object) -> None:
        tls, incoming, outgoing = _bio_handshake(sock, context)
        for _ in range(20):  # the request (after the client's last handshake bytes)
            incoming.write(sock.recv(65536))
            with contextlib.suppress(ssl.SSLWantReadError):
                if b"\r\n\r\n" in tls.read(65536):
                    break
        records = []
        for piece in [SSE_HEAD, *chunks]:
            tls.write(piece)
            records.append(outgoing.read())
        cuts = [len(record) // 2 for record in records]
        sock.sendall(records[0][: cuts[0]])
        for index in range(len(records)):  # the rest of a record and the start of the next, together
            gevent.sleep(0.01)
            following = records[index + 1][: cuts[index + 1]] if index + 1 < len(records) else b""
            sock.sendall(records[index][cuts[index] :] + following)
        sock.recv(1)  # until the client hangs up

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    _late_servers.append(server)
    return int(server.server_port)


def test_a_record_split_over_two_segments_costs_no_read_that_finds_nothing(
    pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub reads a streamed body: a read that completes one record and brings half of the next hands
    on the first and keeps the half (OpenSSL takes it from the BIO) for the readiness that completes it,
    without a raw read that finds nothing (EAGAIN) in between; each record has its own stamp."""
    counted: list[_CountedReads] = []

    class Counted(TlsStream):
        __slots__ = ()

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self._nonblocking = _CountedReads(self._nonblocking)
            counted.append(self._nonblocking)

    monkeypatch.setattr(_tls, "TlsStream", Counted)
    chunks = [_sse_chunk(index) for index in range(10)] + [b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"]
    port = _split_record_server(pki, chunks)
    record = _chat_once(f"https://127.0.0.1:{port}", context_factory(ca_bundle=str(pki["ca.pem"])), 0)
    assert record.ok, record.failure_message
    assert len(record.token_chunk_times_s) == 10 and record.timestamps is StampSource.KERNEL
    assert record.shared_read_token_events == 0
    assert len(counted) == 1
    assert counted[0].reads >= 11, counted[0].reads  # a read per write
    assert counted[0].empty <= 2, (counted[0].reads, counted[0].empty)  # the body's first wait at most
