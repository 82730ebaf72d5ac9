"""What does one streamed chunk cost the load generator? CPU µs and Python calls per chunk, end to end.

One SSE event with one token delta (``data: {...}\\n\\n``, a typical ``chat.completion.chunk``) per
HTTP chunk. All figures come from ONE process, without network noise:

* ``e2e``: a loopback TCP connection; this process writes one chunked-encoded event, then reads it
  through the real :class:`~locust_aiapi._transport.BodyReader` (recvmsg + kernel stamp, Pacer,
  geventhttpclient's chunked decoding) and feeds it to the real
  :class:`~locust_aiapi._stream.StreamRecorder` + SSE decoder + dialect parser: the body of
  ``_hub_reads._pump_here``, the in-greenlet read (sockets the hub cannot read for us). One read per
  chunk, as at model speed. The figure includes the ``send`` of the writer.
* ``floor``: the same ``send`` + one plain ``recv`` per chunk, nothing else: what no parsing costs.
  ``ours`` is ``e2e`` minus it. ``writer``: the sends alone (drained by one large read per 64), so
  ``reader`` (``e2e`` minus it) is what the load generator pays per chunk.
* ``sansio``: decoder + parser + recorder fed the event bytes (no socket), per dialect.

CPU is ``time.process_time`` (user + system) over the whole loop; calls are the Python and C calls
per chunk seen by ``sys.setprofile`` (counted over a separate, shorter loop).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/chunk_cost.py [--chunks 100000] [--repeat 3]

Figures: best of 3 x 100k chunks, kernel stamps on, median of 6 runs alternating the two trees
(2 cores shared with other jobs). BEFORE is the code of a042110 run by this same script:

    mkdir /tmp/before && git archive a042110 locust_aiapi | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before .venv/bin/python benchmarks/chunk_cost.py

                                    BEFORE (a042110)   AFTER (h-chunk)
    e2e    openai                   17.6 µs/chunk      13.9 µs/chunk   -21 %
      minus the writer's sends      16.1               12.3            -24 %
      ours (minus floor)             9.3                5.5            -40 %
      calls/chunk                   61                 39
    e2e    user-space stamps        15.6               12.5            -20 %
    sansio openai                    3.8 (37 calls)     2.6 (22 calls) -32 %
    sansio anthropic                 3.4 (32 calls)     2.5 (21 calls) -25 %
    sansio openai-responses          3.4 (31 calls)     2.6 (20 calls) -25 %

AFTER is b0d4f78. Since then a read that follows one which emptied the socket waits for the socket
first (no failed EAGAIN read per chunk at model speed). This loop writes each chunk just before
reading it, so the data is always there and that wait costs an event-loop round trip a real stream
never pays: e2e reads ~20 µs here now (1 Dec 2026), while in real streaming runs at 1,000 users the
wait-first reads took 10 % off Locust's CPU per chunk (README, "Kernel receive stamps"). For the
load generator's real cost per chunk use stream_fidelity.py (Locust CPU / chunks/s), and to compare
two versions of the code paired_cost.py (both at once on one core). Streamed bodies over a gevent
socket (plain TCP, and TLS with kernel stamps) are now read by the hub's own callbacks
(``_hub_reads``): no greenlet wakes per chunk, which this loop does not measure.
"""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()

import argparse  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import Any  # noqa: E402

from locust_aiapi import _rx_stamps as rx  # noqa: E402
from locust_aiapi._head import BoundedResponse  # noqa: E402
from locust_aiapi._limits import Deadlines, Limits  # noqa: E402
from locust_aiapi._records import RequestKind, RequestRecord  # noqa: E402
from locust_aiapi._stream import StreamRecorder  # noqa: E402
from locust_aiapi._transport import BodyReader  # noqa: E402
from locust_aiapi.dialects.registry import resolve_dialect  # noqa: E402

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENTS = {
    "openai": b'data: {"id":"chatcmpl-9x2b","object":"chat.completion.chunk","created":1733000000,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,'
    b'"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]}\n\n',
    "anthropic": b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" token"}}\n\n',
    "openai-responses": b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","item_id":"msg_1","output_index":0,'
    b'"content_index":0,"delta":" token","sequence_number":7}\n\n',
}


def chunked(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def new_recorder(dialect_name: str) -> tuple[StreamRecorder, RequestRecord]:
    dialect = resolve_dialect(dialect_name)
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, start_epoch_s=0.0, start_s=0.0)
    return StreamRecorder(record, dialect.stream_parser(), body_error=dialect.parse_body_error), record


class _Pool:
    def release_socket(self, sock: object) -> None: ...

    def return_socket(self, sock: object) -> None: ...


@contextmanager
def loopback(kernel: bool) -> Iterator[tuple[socket.socket, socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    client.settimeout(30.0)  # as the pool's network_timeout: BodyReader's per-body timeout handling runs
    server, _ = listener.accept()
    if kernel:
        assert rx.enable_rx_stamps(client)
    try:
        yield client, server
    finally:
        for sock in (client, server, listener):
            sock.close()


def e2e_loop(chunks: int, kernel: bool, dialect_name: str = "openai") -> Callable[[], None]:
    """A function that streams ``chunks`` events through the real reader and recorder."""
    wire = chunked(EVENTS[dialect_name])

    def run() -> None:
        with loopback(kernel) as (client, server):
            server.sendall(HEAD)
            deadlines = Deadlines(Limits(), time.perf_counter(), first_token=False)
            response = BoundedResponse(client, _Pool(), deadlines)
            reader = BodyReader(response, deadlines)
            recorder, record = new_recorder(dialect_name)
            send, read, feed = server.send, reader.read, recorder.feed
            for _ in range(chunks):
                send(wire)
                data = read()
                feed(data, reader.arrived_s, reader.lag_s)
            reader.close()
            assert record.token_chunk_times_s and (reader.lag_s is not None) is kernel

    return run


def floor_loop(chunks: int) -> Callable[[], None]:
    wire = chunked(EVENTS["openai"])

    def run() -> None:
        with loopback(False) as (client, server):
            send, recv = server.send, client.recv
            for _ in range(chunks):
                send(wire)
                recv(65536)

    return run


def writer_loop(chunks: int) -> Callable[[], None]:
    """The writer's share of ``e2e``: the same sends, drained by a rare large read."""
    wire = chunked(EVENTS["openai"])
    batch = 64

    def run() -> None:
        with loopback(False) as (client, server):
            send, recv = server.send, client.recv
            for index in range(chunks):
                send(wire)
                if index % batch == batch - 1:
                    pending = batch * len(wire)
                    while pending:
                        pending -= len(recv(pending))

    return run


def sansio_loop(chunks: int, dialect_name: str) -> Callable[[], None]:
    event = EVENTS[dialect_name]

    def run() -> None:
        recorder, record = new_recorder(dialect_name)
        feed = recorder.feed
        for i in range(chunks):
            feed(event, float(i), None)
        assert len(record.token_chunk_times_s) == min(chunks, 100_000)

    return run


def cpu_us(run: Callable[[], None], chunks: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        run()
        best = min(best, time.process_time() - began)
    return best / chunks * 1e6


def calls_per_chunk(make: Callable[[int], Callable[[], None]], chunks: int = 2000) -> float:
    """Python + C calls per chunk: the difference between two loop lengths (setup cancels out)."""

    def count(run: Callable[[], None]) -> int:
        seen = [0]

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event in ("call", "c_call"):
                seen[0] += 1

        sys.setprofile(profile)
        try:
            run()
        finally:
            sys.setprofile(None)
        return seen[0]

    return (count(make(2 * chunks)) - count(make(chunks))) / chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.chunks, args.repeat
    kernel = rx.KERNEL_STAMPS_AVAILABLE
    floor = cpu_us(floor_loop(n), n, repeat)
    writer = cpu_us(writer_loop(n), n, repeat)
    for name in ("openai",):
        e2e = cpu_us(e2e_loop(n, kernel, name), n, repeat)
        calls = calls_per_chunk(lambda c, name=name: e2e_loop(c, kernel, name))  # type: ignore[misc]
        print(f"e2e    {name:<9} {e2e:5.1f} µs/chunk   (writer's send {writer:.1f} µs, "
              f"reader {e2e - writer:.1f} µs; floor send+recv {floor:.1f} µs, ours {e2e - floor:.1f} µs)")
        print(f"       calls/chunk {calls:.0f}, kernel stamps {'on' if kernel else 'off'}")
    if kernel:
        user = cpu_us(e2e_loop(n, False), n, repeat)
        print(f"e2e    openai    {user:5.1f} µs/chunk with user-space stamps")
    for name in EVENTS:
        sansio = cpu_us(sansio_loop(n, name), n, repeat)
        calls = calls_per_chunk(lambda c, name=name: sansio_loop(c, name))  # type: ignore[misc]
        print(f"sansio {name:<9} {sansio:5.1f} µs/chunk   calls/chunk {calls:.0f}")


if __name__ == "__main__":
    main()
