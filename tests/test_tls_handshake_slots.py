"""At most ``HANDSHAKES_IN_PROGRESS_MAX`` TLS handshakes per server are under way at once (``_tls``).

Real loopback TLS servers in this process: one that counts the ClientHellos it holds unanswered, and
one that never answers. The cap is set low here; the memory it saves is measured by
``tests/test_worker_scale.py`` (over HTTPS) and ``benchmarks/worker_scale.py --tls``.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.socket
import pytest
from gevent.server import StreamServer

from locust_aiapi import _tls
from locust_aiapi._tls import shared_context

from .test_tls import Pki, issue_pki

ANSWER_AFTER_S = 0.2


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return issue_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    def set_cap(count: int) -> None:
        monkeypatch.setattr(_tls, "HANDSHAKES_IN_PROGRESS_MAX", count)
        monkeypatch.setattr(_tls, "_in_progress", {})

    return set_cap


@pytest.fixture
def servers() -> Iterator[list[StreamServer]]:
    started: list[StreamServer] = []
    yield started
    for server in started:
        server.stop(timeout=1)


class SlowAnswer:
    """Answers each ClientHello ``ANSWER_AFTER_S`` after it came; counts those waiting at once."""

    def __init__(self, pki: Pki) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(pki.cert), str(pki.key))
        self.waiting = self.most_waiting = 0

    def handle(self, sock: Any, _address: object) -> None:
        sock.settimeout(5)
        if not sock.recv(1, socket.MSG_PEEK):  # the ClientHello is here
            return
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        gevent.sleep(ANSWER_AFTER_S)
        self.waiting -= 1
        try:
            with self.context.wrap_socket(sock, server_side=True) as tls:
                tls.recv(1)  # until the client closes
        except OSError:
            pass


def _silent(sock: Any, _address: object) -> None:
    """Takes the connection and the ClientHello, and never answers."""
    sock.settimeout(5)
    try:
        sock.recv(65536)
        gevent.sleep(5)
    except OSError:
        pass


def _serve(servers: list[StreamServer], handle: Callable[[Any, object], None]) -> int:
    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    servers.append(server)
    return int(server.server_port)


def _handshake(port: int, pki: Pki, timeout_s: float = 5.0) -> Any:
    sock = gevent.socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    return shared_context(True, str(pki.ca_bundle)).wrap_socket(sock, server_hostname="127.0.0.1")


def test_no_more_handshakes_than_the_cap_are_under_way_with_one_server(
    pki: Pki, cap: Callable[[int], None], servers: list[StreamServer]
) -> None:
    cap(2)
    server = SlowAnswer(pki)
    port = _serve(servers, server.handle)
    began_s = time.monotonic()
    jobs = [gevent.spawn(_handshake, port, pki) for _ in range(6)]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    took_s = time.monotonic() - began_s
    assert all(job.value.version() for job in jobs)  # all six handshakes completed
    assert server.most_waiting == 2  # never more than two ClientHellos were out at once
    assert took_s >= 3 * ANSWER_AFTER_S * 0.9  # so they went two by two
    for job in jobs:
        job.value.close()


def test_handshakes_hanging_on_one_server_do_not_hold_back_another(
    pki: Pki, cap: Callable[[int], None], servers: list[StreamServer]
) -> None:
    cap(2)
    silent_port = _serve(servers, _silent)
    answering = SlowAnswer(pki)
    answering_port = _serve(servers, answering.handle)
    hanging = [gevent.spawn(_handshake, silent_port, pki, 1.5) for _ in range(2)]
    gevent.sleep(0.1)  # both hold the silent server's two slots
    began_s = time.monotonic()
    tls = _handshake(answering_port, pki)
    assert time.monotonic() - began_s < ANSWER_AFTER_S + 0.5
    tls.close()
    gevent.joinall(hanging, timeout=5)
    assert all(isinstance(job.exception, TimeoutError) for job in hanging)


def test_waiting_for_a_slot_counts_against_the_handshake_timeout(
    pki: Pki, cap: Callable[[int], None], servers: list[StreamServer]
) -> None:
    cap(1)
    port = _serve(servers, _silent)
    holder = gevent.spawn(_handshake, port, pki, 3.0)
    gevent.sleep(0.1)
    began_s = time.monotonic()
    with pytest.raises(TimeoutError, match="other TLS handshakes"):
        _handshake(port, pki, 0.3)
    assert 0.25 < time.monotonic() - began_s < 1.0  # its own timeout, not the holder's 3 s
    holder.kill()
