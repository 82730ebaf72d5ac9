"""What does a kernel receive stamp cost per read? BodyReader over loopback, kernel vs user stamps.

A writer greenlet sends one small chunked SSE event at a time; the reader reads it through
:class:`~locust_aiapi._transport.BodyReader` (one recv per chunk, as at model speed). The difference
between the two modes is the cost of ``recvmsg`` + parsing the ancillary stamp + the clock conversion.

    .venv/bin/python benchmarks/rx_stamp_cost.py [--reads 20000]
"""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()

import argparse  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

from locust_aiapi import _rx_stamps as rx  # noqa: E402
from locust_aiapi._head import BoundedResponse  # noqa: E402
from locust_aiapi._limits import Deadlines, Limits  # noqa: E402
from locust_aiapi._transport import BodyReader  # noqa: E402

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"tok"},"finish_reason":null}]}\n\n'
CHUNK = b"%x\r\n%s\r\n" % (len(EVENT), EVENT)


class _Pool:
    def release_socket(self, sock: object) -> None: ...

    def return_socket(self, sock: object) -> None: ...


def measure(reads: int, kernel: bool) -> float:
    """Microseconds per write + read of one chunk."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    if kernel:
        assert rx.enable_rx_stamps(client)
    server.sendall(HEAD)
    response = BoundedResponse(client, _Pool(), Deadlines(Limits(), time.perf_counter(), first_token=False))
    reader = BodyReader(response, Deadlines(Limits(), time.perf_counter(), first_token=False))
    began_s = time.perf_counter()
    for _ in range(reads):
        server.send(CHUNK)
        reader.read()
    elapsed_s = time.perf_counter() - began_s
    assert (reader.lag_s is not None) is kernel
    reader.close()
    for sock in (client, server, listener):
        sock.close()
    return elapsed_s / reads * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=20000)
    args = parser.parse_args()
    for _ in range(3):
        user_us, kernel_us = measure(args.reads, False), measure(args.reads, True)
        print(f"per chunk: user stamps {user_us:.2f} µs, kernel stamps {kernel_us:.2f} µs, "
              f"difference {kernel_us - user_us:+.2f} µs")


if __name__ == "__main__":
    main()
