"""A streamed body over plain TCP is read in the hub's callbacks (``_hub_reads``): the user's greenlet
waits once per body, not once per chunk, and whatever ends a stream (its end, an error, a kill, a
timeout) ends it in that greenlet with the socket's watcher closed. Real loopback servers."""

from __future__ import annotations

import time
from typing import Any

import gevent
import greenlet
import pytest

from locust_aiapi import FailureKind, Outcome, _hub_reads, _stream
from locust_aiapi._records import StampSource
from locust_aiapi._rx_stamps import KERNEL_STAMPS_AVAILABLE

from .test_client_io import END, STREAM_HEAD, Step, chat, chunked, delta, make_client, serve, sse

__all__ = ["serve"]  # the fixture, used by name


def model_speed(chunks: int, gap_s: float) -> list[Step]:
    script: list[Step] = [(0, STREAM_HEAD)]
    script += [(gap_s, chunked(delta(f"t{index} "))) for index in range(chunks)]
    script.append((gap_s, chunked(delta("", "stop") + b"data: [DONE]\n\n") + END))
    return script


def switches_into(target: greenlet.greenlet, run: Any) -> int:
    """How often ``run()`` (in the caller, while ``target`` works) saw a switch into ``target``."""
    count = 0

    def trace(event: str, args: Any) -> None:
        nonlocal count
        if event in ("switch", "throw") and args[1] is target:
            count += 1

    previous = greenlet.settrace(trace)
    try:
        run()
    finally:
        greenlet.settrace(previous)
    return count


def test_a_stream_wakes_its_greenlet_once_not_once_per_chunk(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = serve(model_speed(30, 0.01))
    client, _ = make_client()
    user = gevent.spawn(chat, client, url)
    woken = switches_into(user, user.join)
    record = user.get()
    assert record.ok, record.failure_message
    assert len(record.token_chunk_times_s) == 31
    if KERNEL_STAMPS_AVAILABLE:
        assert record.timestamps is StampSource.KERNEL
    # connect, send, the head and the body's end: a handful, where a read per chunk woke it 31+ times
    assert woken <= 10, woken


def test_the_reads_are_handed_to_the_hub_only_for_plain_gevent_sockets(serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The same stream read in the user's greenlet (what a TLS or foreign socket gets) wakes it per chunk."""
    from locust_aiapi._body_reader import BodyReader

    monkeypatch.setattr(BodyReader, "read_event", property(lambda self: None))
    url, _ = serve(model_speed(30, 0.01))
    client, _ = make_client()
    user = gevent.spawn(chat, client, url)
    woken = switches_into(user, user.join)
    assert user.get().ok
    assert woken > 30, woken


@pytest.fixture
def hub_reads(monkeypatch: pytest.MonkeyPatch) -> list[_hub_reads._HubRead]:
    """Every body the hub reads from now on, as it starts."""
    reads: list[_hub_reads._HubRead] = []
    real_run = _hub_reads._HubRead.run

    def run(self: _hub_reads._HubRead, read_event: Any) -> None:
        reads.append(self)
        real_run(self, read_event)

    monkeypatch.setattr(_hub_reads._HubRead, "run", run)
    return reads


def test_a_greenlet_killed_mid_stream_closes_its_watcher(serve, hub_reads) -> None:  # type: ignore[no-untyped-def]
    reads = hub_reads
    url, scripted = serve(model_speed(100, 0.01))
    client, reported = make_client()
    user = gevent.spawn(chat, client, url)
    gevent.sleep(0.3)
    assert reads and reads[0]._watcher.active  # it is being read by the hub
    user.kill()
    assert not reads[0]._watcher.active
    gevent.sleep(0.2)  # the server goes on writing: nothing reads it, nothing raises in the hub
    assert user.dead and [r.outcome for r in reported] == [Outcome.CANCELLED]
    assert len(reported[0].token_chunk_times_s) >= 5  # what it measured before the kill is kept
    record = chat(client, url)  # the next request is not disturbed
    assert record.ok and len(scripted.requests) == 2, record.failure_message


def test_an_error_while_reading_ends_that_stream_in_its_greenlet_not_in_the_hub(serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    hub_errors: list[Any] = []
    monkeypatch.setattr(gevent.get_hub(), "handle_error", lambda *args: hub_errors.append(args))
    real_feed = _stream.StreamRecorder.feed
    fed: list[int] = []

    def feed(self: _stream.StreamRecorder, data: bytes, now: float, lag_s: float | None = None) -> bool:
        fed.append(len(data))
        if len(fed) == 3:
            raise RuntimeError("a recorder bug")
        return real_feed(self, data, now, lag_s)

    monkeypatch.setattr(_stream.StreamRecorder, "feed", feed)
    url, _ = serve(model_speed(20, 0.01))
    client, _ = make_client()
    record = chat(client, url)
    assert record.outcome is Outcome.FAILURE and "a recorder bug" in (record.failure_message or "")
    assert len(record.token_chunk_times_s) == 2  # what was measured before it is kept
    assert not hub_errors


@pytest.mark.parametrize("ending", ["close", "stall"])
def test_a_stream_cut_or_stalled_mid_body_fails_in_its_greenlet(serve, ending: str) -> None:  # type: ignore[no-untyped-def]
    script = model_speed(5, 0.01)[:-1] + ([(0.01, b"")] if ending == "close" else [(3.0, END)])
    url, _ = serve(script)
    client, _ = make_client(timeout=0.3)
    record = chat(client, url)
    expected = FailureKind.CONNECTION_ERROR if ending == "close" else FailureKind.TIMEOUT
    assert record.failure_kind is expected, record.failure_message
    assert len(record.token_chunk_times_s) == 5


LAST = chunked(delta("", "stop") + sse("[DONE]"))
UNTIL_CLOSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    "script",
    [
        [(0, STREAM_HEAD + chunked(delta("a")) + LAST + END)],
        [(0, STREAM_HEAD), (0.05, chunked(delta("a")) + LAST + b"0\r\n"), (0.1, b"X-T: 1\r\n\r\n")],
        [(0, STREAM_HEAD), (0.05, chunked(delta("a")) + LAST + b"0\r\nX-T: 1\r\n"), (0.1, b"\r\n")],
        [(0, UNTIL_CLOSE_HEAD), (0.05, delta("a") + delta("", "stop") + sse("[DONE]")), (0.05, b"")],
        [(0, UNTIL_CLOSE_HEAD + delta("a") + delta("", "stop") + sse("[DONE]")), (0.0, b"")],
    ],
    ids=[
        "whole-with-the-head",
        "trailer-later",
        "trailer-end-later",
        "until-close",
        "until-close-with-the-head",
    ],
)
def test_every_way_a_body_ends_ends_it(serve, script: list[Step]) -> None:  # type: ignore[no-untyped-def]
    url, _ = serve(script)
    client, _ = make_client(timeout=1.0)
    record = chat(client, url)
    assert record.ok, record.failure_message
    assert len(record.token_chunk_times_s) == 2


def test_a_socket_closed_by_another_greenlet_mid_stream_fails_at_once(serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """gevent's ``close`` cancels the waits on the socket's own read watcher: the hub read is one."""
    from locust_aiapi import _body_reader

    readers: list[_body_reader.BodyReader] = []
    real_init = _body_reader.BodyReader.__init__

    def init(self: _body_reader.BodyReader, *args: Any) -> None:
        real_init(self, *args)
        readers.append(self)

    monkeypatch.setattr(_body_reader.BodyReader, "__init__", init)
    url, _ = serve(model_speed(50, 0.02))
    client, _ = make_client(timeout=5.0)
    user = gevent.spawn(chat, client, url)
    gevent.sleep(0.2)
    began = time.monotonic()
    readers[0]._sock.close()
    record = user.get(timeout=5)
    assert record.failure_kind is FailureKind.CONNECTION_ERROR, record.failure_message
    assert "closed in another greenlet" in (record.failure_message or "")
    assert time.monotonic() - began < 0.5  # not the 5 s idle timeout


def test_a_body_waiting_for_its_first_token_is_read_at_a_higher_priority(serve, hub_reads) -> None:  # type: ignore[no-untyped-def]
    """libev runs the watchers one poll found ready highest priority first: until its first token a
    body's read watcher has FIRST_TOKEN_PRIORITY, then the usual 0, which the socket keeps after it."""
    reads = hub_reads
    script: list[Step] = [(0, STREAM_HEAD), (0.3, chunked(delta("first ")))]
    script += [(0.05, chunked(delta(f"t{index} "))) for index in range(5)]
    script.append((0.05, chunked(delta("", "stop") + b"data: [DONE]\n\n") + END))
    url, _ = serve(script)
    client, _ = make_client()
    user = gevent.spawn(chat, client, url)
    gevent.sleep(0.15)
    assert reads and reads[0]._watcher.active
    assert reads[0]._watcher.priority == _hub_reads.FIRST_TOKEN_PRIORITY > 0
    gevent.sleep(0.3)  # the first token is in, the rest comes
    assert reads[0]._watcher.active and reads[0]._watcher.priority == 0
    record = user.get()
    assert record.ok and len(record.token_chunk_times_s) == 7, record.failure_message  # with the stop delta
    assert reads[0]._watcher.priority == 0 and not reads[0]._watcher.active
