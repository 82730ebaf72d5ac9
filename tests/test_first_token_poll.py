"""Sockets still waiting for their first token are polled between other reads (``_first_token_poll``):
the set itself over real socket pairs, then a hub kept busy by other streams' reads while the mock
(another process) sends a first token and, 20 ms later, the next one."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from locust_aiapi import _first_token_poll, _hub_reads, ttft_ms
from locust_aiapi._first_token_poll import INTERVAL_S, FirstTokenPoll, first_token_poll
from locust_aiapi._rx_stamps import KERNEL_STAMPS_AVAILABLE
from locust_aiapi.mock import MockProcess

from .test_client_io import chat, make_client

pytestmark = pytest.mark.skipif(_first_token_poll._EPOLL is None, reason="no epoll on this platform")


class Read:
    def __init__(self, poll: FirstTokenPoll | None = None) -> None:
        self.calls = 0
        self.poll = poll

    def on_readable(self) -> None:
        self.calls += 1
        if self.poll is not None:  # a read made by the poll that would poll again: not nested
            self.poll.poll_if_due(time.perf_counter() + 1.0)


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(3)]
    yield made
    for a, b in made:
        a.close()
        b.close()


def test_a_poll_reads_the_watched_sockets_that_are_ready_once_per_interval(pairs) -> None:  # type: ignore[no-untyped-def]
    poll = FirstTokenPoll()
    reads = [Read() for _ in pairs]
    for (ours, _), read in zip(pairs, reads, strict=True):
        poll.add(ours.fileno(), read)
    assert len(poll) == 3
    pairs[1][1].send(b"data: first\n\n")
    now_s = time.perf_counter()
    poll.poll_if_due(now_s)
    assert [r.calls for r in reads] == [0, 1, 0]
    poll.poll_if_due(now_s + INTERVAL_S / 2)  # not due yet: no poll
    assert [r.calls for r in reads] == [0, 1, 0]
    poll.poll_if_due(now_s + INTERVAL_S)  # still unread: ready again
    assert [r.calls for r in reads] == [0, 2, 0]
    poll.discard(pairs[1][0].fileno(), reads[1])  # its first token is in: no longer watched
    poll.poll_if_due(now_s + 2 * INTERVAL_S)
    assert [r.calls for r in reads] == [0, 2, 0] and len(poll) == 2


def test_a_number_reused_after_a_close_belongs_to_its_new_read() -> None:
    poll = FirstTokenPoll()
    old, new = Read(), Read()
    ours, theirs = socket.socketpair()
    fd = ours.fileno()
    poll.add(fd, old)
    ours.close()  # the kernel takes a closed socket out of the set; its read never discarded it
    again, peer = socket.socketpair()
    try:
        assert again.fileno() == fd  # the lowest free number: the same one
        poll.add(fd, new)
        peer.send(b"x")
        poll.poll_if_due(time.perf_counter())
        assert (old.calls, new.calls, len(poll)) == (0, 1, 1)
        poll.discard(fd, old)  # the old read's late discard leaves the new one watched
        assert len(poll) == 1
        poll.discard(fd, new)
        assert len(poll) == 0
    finally:
        again.close()
        peer.close()
        theirs.close()
    poll.discard(fd, new)  # closed and not watched: nothing to do, nothing raised


def test_a_forked_child_leaves_its_parents_set_alone(pairs) -> None:  # type: ignore[no-untyped-def]
    poll = FirstTokenPoll()
    _first_token_poll._POLLS[gevent.get_hub()] = poll  # what first_token_poll() would have made
    read = Read()
    ours, theirs = pairs[0]
    poll.add(ours.fileno(), read)
    child = os.fork()
    if child == 0:  # the child's reads in flight still hold this set: what they do must not reach ours
        poll.discard(ours.fileno(), read)
        poll.add(ours.fileno(), Read())
        poll.poll_if_due(time.perf_counter())
        os._exit(0 if len(poll) == 0 else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    theirs.send(b"x")
    poll.poll_if_due(time.perf_counter())
    assert read.calls == 1 and len(poll) == 1
    _first_token_poll._POLLS.pop(gevent.get_hub())


def test_a_read_made_by_the_poll_does_not_poll_again(pairs) -> None:  # type: ignore[no-untyped-def]
    poll = FirstTokenPoll()
    nested = Read(poll)
    plain = Read()
    poll.add(pairs[0][0].fileno(), nested)
    poll.add(pairs[1][0].fileno(), plain)
    pairs[0][1].send(b"x")
    pairs[1][1].send(b"x")
    poll.poll_if_due(time.perf_counter())
    assert (nested.calls, plain.calls) == (1, 1)  # once each: the nested poll did nothing


def test_each_hub_has_one_set_whatever_greenlet_asks() -> None:
    sets = [gevent.spawn(first_token_poll) for _ in range(3)]
    gevent.joinall(sets)
    assert len({id(g.value) for g in sets}) == 1 and sets[0].value is first_token_poll()


@pytest.mark.skipif(not KERNEL_STAMPS_AVAILABLE, reason="the shared read is told by kernel stamps")
def test_a_first_token_is_read_alone_while_other_streams_keep_the_hub_busy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Ten busy streams whose every read takes 6 ms: one loop iteration of theirs lasts ~60 ms, three
    token gaps of the measured stream. Without the poll its first token, read at the next iteration,
    shares a read with the second (about 3 in 4 requests); with it, the first is read alone."""
    real_read_once = _hub_reads._HubRead._read_once

    def busy_read_once(self: Any) -> None:
        real_read_once(self)
        if len(self._record.token_chunk_times_s) > 10:  # a busy stream (the measured one has 4 tokens)
            until = time.perf_counter() + 0.006
            while time.perf_counter() < until:  # holds the hub, as hundreds of reads do at saturation
                pass

    monkeypatch.setattr(_hub_reads._HubRead, "_read_once", busy_read_once)
    busy_args = ["--ttft-ms", "0", "--itl-ms", "2", "--output-tokens", "3000"]
    measured_args = ["--ttft-ms", "150", "--itl-ms", "20", "--output-tokens", "4"]
    with MockProcess(busy_args) as busy, MockProcess(measured_args) as measured:
        busy_client, _ = make_client(timeout=30.0)
        busy_users = [gevent.spawn(chat, busy_client, busy.url) for _ in range(10)]
        gevent.sleep(0.5)  # all ten streaming
        client, _ = make_client()
        records = [chat(client, measured.url) for _ in range(6)]
        gevent.killall(busy_users)
    assert all(r.ok for r in records), [r.failure_message for r in records]
    assert [r.first_token_shared_read for r in records] == [False] * 6
    assert all((ttft_ms(r) or 0.0) >= 150.0 for r in records)
    gaps_ms = [(r.token_chunk_times_s[1] - r.token_chunk_times_s[0]) * 1000.0 for r in records]
    assert min(gaps_ms) > 10.0, gaps_ms  # the mock's 20 ms between them: each was stamped on its own
