"""An open HTTPS stream gives back the 16 KiB record buffer OpenSSL set up for the session tickets.

Against the mock over real TLS (it sends TLS 1.3 session tickets, as most servers do): the memory of
open streams measured in a process of their own, with and without the release, and streams that go on
working after it: keep-alive requests on the released connection, and a record read in two parts.
"""

from __future__ import annotations

import ctypes
import ssl
import sys
from pathlib import Path
from typing import Any

import gevent
import orjson
import pytest
from gevent.server import StreamServer
from geventhttpclient.client import HTTPClientPool

from locust_aiapi import _rx_stamps as rx
from locust_aiapi import _tls_buffers, _tls_stream
from locust_aiapi._client import AIClient
from locust_aiapi._records import RequestRecord
from locust_aiapi._requests import ChatRequest
from locust_aiapi._retry import RetryPolicy
from locust_aiapi._tls import context_factory, shared_context
from locust_aiapi._tls_stream import TlsStream
from locust_aiapi.dialects import OPENAI
from locust_aiapi.mock import MockConfig, MockProcess, MockServer

from .rss import run_measuring_rss
from .test_tls import Pki, issue_pki
from .test_tls_stamps import streams  # noqa: F401 - the fixture: every TlsStream handed out

pytestmark = pytest.mark.skipif(
    not rx.KERNEL_STAMPS_AVAILABLE, reason="TlsStream is used where kernel stamps are"
)
CLIENT = Path(__file__).with_name("tls_memory_client.py")
STREAMS = 150


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return issue_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def releases(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What every release attempt of a ``TlsStream`` returned."""
    seen: list[bool] = []

    def counted(sslobj: Any) -> bool:
        freed = _tls_buffers.release_idle_buffers(sslobj)
        seen.append(freed)
        return freed

    monkeypatch.setattr(_tls_stream, "release_idle_buffers", counted)
    return seen


# -- whether it can be trusted here --------------------------------------------------------------------


@pytest.mark.skipif(not _tls_buffers._openssl_is_fixed(), reason="this OpenSSL has CVE-2024-4741")
def test_the_pointer_check_passes_on_this_cpython() -> None:
    assert sys.implementation.name == "cpython"
    assert _tls_buffers.releasing_available()


@pytest.mark.parametrize(
    ("version", "fixed"),
    [
        ((3, 0, 0, 13, 0), False),
        ((3, 0, 0, 14, 0), True),
        ((3, 1, 0, 5, 0), False),
        ((3, 1, 0, 6, 0), True),
        ((3, 2, 0, 1, 0), False),
        ((3, 3, 0, 0, 0), False),
        ((3, 3, 0, 1, 0), True),
        ((3, 4, 0, 0, 0), True),
        ((1, 1, 1, 25, 15), False),
    ],
)
def test_openssl_versions_with_the_use_after_free_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, version: tuple[int, ...], fixed: bool
) -> None:
    monkeypatch.setattr(ssl, "OPENSSL_VERSION_INFO", version)
    assert _tls_buffers._openssl_is_fixed() is fixed
    assert (_tls_buffers._load() is not None) is fixed


def test_a_pointer_that_does_not_check_out_leaves_releasing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # one field earlier is the socket's (NULL for memory BIOs): what a changed layout would read
    monkeypatch.setattr(
        _tls_buffers, "_pointer_offset", _tls_buffers._pointer_offset - ctypes.sizeof(ctypes.c_void_p)
    )
    assert _tls_buffers._load() is None


# -- what it saves ---------------------------------------------------------------------------------------


def test_open_streams_hold_16_kib_less_each_with_the_release(pki: Pki) -> None:
    tls = ["--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    figures, peaks = {}, {}
    with MockProcess(["--ttft-ms", "1", "--itl-ms", "10000", "--output-tokens", "3", *tls]) as mock:
        for mode in ("on", "off"):
            run = run_measuring_rss(
                [sys.executable, str(CLIENT), mock.url, str(pki.ca_bundle), str(STREAMS), mode], timeout_s=120
            )
            assert run.returncode == 0, run.stderr[-2000:]
            figures[mode], peaks[mode] = orjson.loads(run.stdout.splitlines()[-1]), run.peak_rss_mib
    on, off = figures["on"], figures["off"]
    print(
        f"per stream, on/off: in use {on['in_use_kib_per_stream']:.1f}/{off['in_use_kib_per_stream']:.1f} KiB"
    )
    print(f"resident {on['resident_kib_per_stream']:.1f}/{off['resident_kib_per_stream']:.1f} KiB")
    print(f"peak RSS {peaks['on']:.1f}/{peaks['off']:.1f} MiB")
    assert on["release_available"] and on["released"] >= STREAMS  # once per stream at least
    assert off["released"] == 0
    assert off["in_use_kib_per_stream"] - on["in_use_kib_per_stream"] > 12.0  # the ~16.6 KiB buffer
    assert on["resident_kib_per_stream"] < off["resident_kib_per_stream"]
    assert peaks["on"] < 200 and peaks["off"] < 200  # MiB: 150 streams, a bound well above both


# -- streams go on working -------------------------------------------------------------------------------


def test_keep_alive_requests_on_a_released_connection_all_stream(
    pki: Pki,
    releases: list[bool],
    streams: list[TlsStream],  # noqa: F811 - the fixture imported above
) -> None:
    config = MockConfig(
        port=0, ttft_ms=5, itl_ms=2, output_tokens=20, tls_cert=str(pki.cert), tls_key=str(pki.key)
    )
    records: list[RequestRecord] = []
    factory = context_factory(ca_bundle=str(pki.ca_bundle))
    pool = HTTPClientPool(
        ssl_context_factory=factory, insecure=False, network_timeout=5, connection_timeout=5
    )
    client = AIClient(
        pool=pool, headers={}, dialect=OPENAI, retry=RetryPolicy(0, 0.01, 0.01), report=records.append
    )
    with MockServer(config) as mock:
        for _ in range(3):
            request = ChatRequest(
                "chat", mock.base_url + "/v1/chat/completions", "m", [{"role": "user", "content": "hi"}], True
            )
            client.chat(request)
    pool.close()
    assert [record.ok for record in records] == [True] * 3, [r.failure_message for r in records]
    assert all(record.output_tokens == 20 for record in records)
    assert releases.count(True) >= 3  # once per response, on the one connection
    assert len(streams) == 1  # one connection for the three


def test_a_record_read_in_two_parts_keeps_its_buffer_until_the_second(pki: Pki, releases: list[bool]) -> None:
    port = _server_sending(pki, [b"x" * 1000, b"y" * 500])
    stream = _connect(port, pki)
    assert stream.recv(10) == b"x" * 10
    assert releases == []  # OpenSSL still held 990 decrypted bytes: not even asked
    assert stream.recv(65536) == b"x" * 990
    assert releases == [True]
    assert _read_until_end(stream) == b"y" * 500  # the buffer is set up again for the next record
    stream.close()


def _connect(port: int, pki: Pki) -> TlsStream:
    sock = gevent.socket.create_connection(("127.0.0.1", port), timeout=5)
    stream = shared_context(True, str(pki.ca_bundle)).wrap_socket(sock, server_hostname="127.0.0.1")
    assert isinstance(stream, TlsStream)
    return stream


def _read_until_end(stream: TlsStream) -> bytes:
    parts: list[bytes] = []
    for _ in range(1000):  # bounded: the server closes
        data = stream.recv(65536)
        if not data:
            return b"".join(parts)
        parts.append(data)
    raise AssertionError("no end")


_servers: list[StreamServer] = []


@pytest.fixture(autouse=True)
def _stop_servers() -> Any:
    yield
    while _servers:
        _servers.pop().stop(timeout=1)


def _server_sending(pki: Pki, records: list[bytes]) -> int:
    """A TLS server (with tickets, TLS 1.3) that sends each of ``records`` 50 ms apart, then closes."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.cert), str(pki.key))

    def handle(sock: Any, _address: object) -> None:
        sock.settimeout(5)
        with context.wrap_socket(sock, server_side=True) as tls:
            for record in records:
                tls.sendall(record)
                gevent.sleep(0.05)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    _servers.append(server)
    return int(server.server_port)
