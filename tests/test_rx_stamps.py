"""Kernel receive stamps against a real loopback server that writes at known times to a late reader.

The server runs in this process (same hub, same ``perf_counter``): after each write it busy-waits, so
the client's greenlet can read only later. The kernel stamp must sit at the write, the user-space stamp
late, and the measured client lag must be about the delay.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import gevent
import orjson
import pytest
from gevent.server import StreamServer
from geventhttpclient.client import HTTPClientPool

from locust_aiapi import Outcome, RequestRecord, RetryPolicy
from locust_aiapi import _rx_stamps as rx
from locust_aiapi._client import AIClient
from locust_aiapi._records import RequestKind, StampSource
from locust_aiapi._requests import ChatRequest
from locust_aiapi._stream import StreamRecorder
from locust_aiapi.dialects import OPENAI

needs_kernel_stamps = pytest.mark.skipif(not rx.KERNEL_STAMPS_AVAILABLE, reason="no SO_TIMESTAMPNS here")

BUSY_S = 0.05
GAP_S = 0.03
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _event(content: str, finish: str | None = None) -> bytes:
    payload = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _busy_wait(seconds: float) -> None:
    """Hold the hub (no yield), like a load generator too busy to read."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


class LateReaderServer:
    """Answers one streamed chat; writes ``writes`` in turn, busy-waiting ``BUSY_S`` after each, then
    letting the client read."""

    def __init__(self, writes: list[bytes]) -> None:
        self.writes = writes
        self.written_s: list[float] = []

    def handle(self, sock: socket.socket, _address: object) -> None:
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):  # the JSON body ends the request
            part = sock.recv(65536)
            if not part:
                return
            data += part
        for piece in self.writes:
            sock.sendall(piece)
            self.written_s.append(time.perf_counter())
            _busy_wait(BUSY_S)
            gevent.sleep(GAP_S)  # now the late reader reads this write, and only this one
        sock.close()


@pytest.fixture(autouse=True)
def _stamping_on() -> None:
    """Turn the kernel's receive stamping on and give its deferred switch time to take effect (see
    ``_rx_stamps._keeper``): the tests below check stamps, not the first moments of a process."""
    if rx.KERNEL_STAMPS_AVAILABLE and not rx._keeper:
        rx.keep_stamping_on()
        time.sleep(0.05)


@pytest.fixture
def late_server() -> Iterator[object]:
    servers: list[StreamServer] = []
    pools: list[HTTPClientPool] = []

    def run(writes: list[bytes]) -> tuple[RequestRecord, LateReaderServer]:
        handler = LateReaderServer(writes)
        server = StreamServer(("127.0.0.1", 0), handler.handle)
        server.start()
        servers.append(server)
        pool = HTTPClientPool(network_timeout=5.0, connection_timeout=5.0, concurrency=1)
        pools.append(pool)
        client = AIClient(pool, {}, OPENAI, RetryPolicy(max_retries=0), lambda _record: None)
        url = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
        request = ChatRequest("chat", url, "m", [{"role": "user", "content": "hi"}], True)
        return client.chat(request).record, handler

    yield run
    for pool in pools:
        pool.close()
    for server in servers:
        server.stop(timeout=1)


def _stream_in_three_writes() -> list[bytes]:
    return [
        HEAD + _chunked(_event("a")),
        _chunked(_event("b")),
        _chunked(_event("c", "stop") + b"data: [DONE]\n\n") + b"0\r\n\r\n",
    ]


@needs_kernel_stamps
def test_kernel_stamps_sit_at_the_write_while_the_reader_was_late(late_server) -> None:  # type: ignore[no-untyped-def]
    record, server = late_server(_stream_in_three_writes())
    assert record.outcome is Outcome.SUCCESS, record.failure_message
    assert record.timestamps is StampSource.KERNEL
    assert len(record.token_chunk_times_s) == 3
    for stamp_s, written_s in zip(record.token_chunk_times_s, server.written_s, strict=True):
        # the write returned just after the data was queued: the kernel stamp is between the two
        assert -0.005 < stamp_s - written_s < 0.005
    # every read was late by about the busy wait, and the lag says so
    assert len(record.client_lags_s) >= 2
    assert all(0.8 * BUSY_S < lag_s < 10 * BUSY_S for lag_s in record.client_lags_s[1:])
    assert record.shared_read_token_events == 0 and not record.first_token_shared_read
    # the head came with the first token, the end with the last: the same kernel stamps
    assert record.headers_s == record.token_chunk_times_s[0]
    assert record.end_s == record.token_chunk_times_s[-1]


def test_without_kernel_stamps_the_user_stamp_is_used_and_is_late(late_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(rx, "KERNEL_STAMPS_AVAILABLE", False)
    record, server = late_server(_stream_in_three_writes())
    assert record.outcome is Outcome.SUCCESS, record.failure_message
    assert record.timestamps is StampSource.USER
    assert record.client_lags_s == []
    later = [
        stamp_s - written_s
        for stamp_s, written_s in zip(record.token_chunk_times_s, server.written_s, strict=True)
    ]
    assert all(lag_s > 0.8 * BUSY_S for lag_s in later[1:])


@needs_kernel_stamps
def test_token_events_that_shared_a_read_are_counted_with_the_first_token(late_server) -> None:  # type: ignore[no-untyped-def]
    end = _chunked(_event("c", "stop") + b"data: [DONE]\n\n") + b"0\r\n\r\n"
    record, server = late_server([HEAD + _chunked(_event("a") + _event("b")), end])
    assert record.outcome is Outcome.SUCCESS, record.failure_message
    assert record.shared_read_token_events == 2
    assert record.first_token_shared_read
    first_s, second_s, _third_s = record.token_chunk_times_s
    assert first_s == second_s  # one read, one stamp: an upper bound for the first
    assert abs(first_s - server.written_s[0]) < 0.005


def test_a_converted_stamp_is_never_later_than_the_read() -> None:
    clock = rx.RxClock()
    now_ns = time.time_ns()
    assert abs(clock.to_perf_s(now_ns) - time.perf_counter()) < 0.001
    stamp = rx._TIMESPEC.pack(now_ns // 1_000_000_000, now_ns % 1_000_000_000)
    ancdata = [(socket.SOL_SOCKET, rx._SO_TIMESTAMPNS, stamp)]
    user_s = time.perf_counter()
    assert clock.stamp_s(ancdata, user_s) == pytest.approx(clock.to_perf_s(now_ns), abs=1e-9)
    assert clock.stamp_s(ancdata, user_s - 1.0) == user_s - 1.0  # clamped
    assert clock.stamp_s([(socket.SOL_SOCKET, 99, stamp)], user_s) is None
    assert clock.stamp_s([(socket.SOL_SOCKET, rx._SO_TIMESTAMPNS, b"\0" * 4)], user_s) is None
    zero = rx._TIMESPEC.pack(0, 0)
    assert clock.stamp_s([(socket.SOL_SOCKET, rx._SO_TIMESTAMPNS, zero)], user_s) is None


def test_a_tls_socket_gets_no_kernel_stamps() -> None:
    class FakeTLS:
        def recvmsg(self) -> None: ...
        def do_handshake(self) -> None: ...
        def setsockopt(self, *args: object) -> None:
            raise AssertionError("must not be called")

    assert not rx.enable_rx_stamps(FakeTLS())


def _recorder() -> tuple[RequestRecord, StreamRecorder]:
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=0.0, start_s=0.0)
    return record, StreamRecorder(record, OPENAI.stream_parser())


_BODY = _event("a") + _event("b") + _event("c", "stop") + b"data: [DONE]\n\n"


def test_the_recorder_counts_token_events_of_one_read_and_keeps_the_lags() -> None:
    record, recorder = _recorder()
    assert recorder.feed(_BODY, 1.0, 0.002)
    recorder.end(2.0)
    assert record.ok, record.failure_message
    assert record.token_chunk_times_s == [1.0, 1.0, 1.0]
    assert record.shared_read_token_events == 3 and record.first_token_shared_read
    assert record.timestamps is StampSource.KERNEL
    assert record.client_lags_s == [0.002]


def test_byte_by_byte_no_token_event_shares_a_read_and_one_user_stamp_makes_it_user() -> None:
    record, recorder = _recorder()
    for i in range(len(_BODY)):
        assert recorder.feed(_BODY[i : i + 1], 1.0 + i, None if i == 5 else 0.001)
    recorder.end(1.0 + len(_BODY))
    assert record.ok, record.failure_message
    assert len(set(record.token_chunk_times_s)) == 3
    assert record.shared_read_token_events == 0 and not record.first_token_shared_read
    assert record.timestamps is StampSource.USER
    assert len(record.client_lags_s) == len(_BODY) - 1


def test_a_shared_read_after_the_first_token_leaves_the_first_alone() -> None:
    record, recorder = _recorder()
    split = len(_event("a"))
    assert recorder.feed(_BODY[:split], 1.0)
    assert recorder.feed(_BODY[split:], 2.0)
    recorder.end(3.0)
    assert record.shared_read_token_events == 2 and not record.first_token_shared_read
    assert record.timestamps is StampSource.USER and record.client_lags_s == []
