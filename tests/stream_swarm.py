"""A light load generator that is not Locust: thousands of keep-alive streaming connections on raw
gevent sockets, for the mock's scale test and `benchmarks/mock_scale.py`.

Each connection asks for one streamed chat completion after another until the run's end, and stamps
every content chunk as it arrives. Parsing is a small sans-IO class (`ChunkedEvents`); the I/O loop
only reads, stamps and feeds it.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import gevent
import orjson
from gevent import socket
from gevent.pool import Pool

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
RECV_BYTES = 65_536
CONTENT_MARK = b'"delta":{"content":'


class SwarmProtocolError(Exception):
    """The server answered something other than a 200 chunked event stream."""


class ChunkedEvents:
    """Sans-IO: the bytes of one HTTP/1.1 response in, the body's chunks (one SSE event each) out."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_body = False
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        if len(self._buffer) > MAX_RESPONSE_BYTES:
            raise SwarmProtocolError("response larger than MAX_RESPONSE_BYTES")
        if not self._in_body and not self._read_head():
            return []
        frames: list[bytes] = []
        while not self.done:
            frame = self._next_frame()
            if frame is None:
                break
            frames.append(frame)
        return frames

    def _read_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).lower()
        if not head.startswith(b"http/1.1 200 ") or b"transfer-encoding: chunked" not in head:
            raise SwarmProtocolError(f"unexpected response head {bytes(self._buffer[:60])!r}")
        del self._buffer[: end + 4]
        self._in_body = True
        return True

    def _next_frame(self) -> bytes | None:
        line_end = self._buffer.find(b"\r\n")
        if line_end < 0:
            return None
        try:
            size = int(self._buffer[:line_end], 16)
        except ValueError:
            raise SwarmProtocolError("bad chunk size line") from None
        frame_end = line_end + 2 + size
        if len(self._buffer) < frame_end + 2:
            return None
        frame = bytes(self._buffer[line_end + 2 : frame_end])
        del self._buffer[: frame_end + 2]
        self.done = size == 0
        return frame


@dataclass
class SwarmResult:
    """What the clients saw; arrays keep 10,000 streams' worth of stamps small."""

    responses: int = 0
    content_chunks: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    gap_minus_itl_ms: array[float] = field(default_factory=lambda: array("d"))
    arrival_s: array[float] = field(default_factory=lambda: array("d"))  # every content chunk
    streaming: int = 0
    peak_streaming: int = 0
    connected: int = 0
    peak_connected: int = 0
    started_s: float = 0.0  # perf_counter() when the first connection opened


@dataclass(frozen=True)
class SwarmPlan:
    url: str
    streams: int
    run_time_s: float  # no new request starts after this; answers in flight finish
    ramp_s: float  # connections open evenly spread over this
    itl_ms: float
    output_tokens: int
    read_timeout_s: float = 30.0

    def request_bytes(self) -> bytes:
        payload = {
            "model": "gpt-4.1",
            "messages": [{"role": "user", "content": "hello"}],
            "stream": True,
            "max_tokens": self.output_tokens,
        }
        body = orjson.dumps(payload)
        host = urlsplit(self.url).netloc
        head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        return head.encode() + b"content-length: %d\r\n\r\n" % len(body) + body


def run_swarm(plan: SwarmPlan, grace_s: float = 30.0) -> SwarmResult:
    """Run every connection of ``plan``; returns after the last answer, or ``grace_s`` after the run."""
    start_s = time.perf_counter()
    result = SwarmResult(started_s=start_s)
    pool = Pool()
    for index in range(plan.streams):
        pool.spawn(_connection, plan, start_s + index * plan.ramp_s / plan.streams, start_s, result)
    pool.join(timeout=plan.ramp_s + plan.run_time_s + grace_s)
    if len(pool):
        result.errors["unfinished at the time limit"] += len(pool)
        pool.kill(block=True, timeout=5.0)
    return result


def _connection(plan: SwarmPlan, open_at_s: float, start_s: float, result: SwarmResult) -> None:
    gevent.sleep(max(0.0, open_at_s - time.perf_counter()))
    address = urlsplit(plan.url)
    try:
        sock = socket.create_connection((address.hostname, address.port), timeout=plan.read_timeout_s)
    except OSError as error:
        result.errors[f"connect: {error.__class__.__name__} {error.errno}"] += 1
        return
    result.connected += 1
    result.peak_connected = max(result.peak_connected, result.connected)
    request = plan.request_bytes()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while time.perf_counter() - start_s < plan.ramp_s + plan.run_time_s:
            sock.sendall(request)
            _read_stream(sock, plan.itl_ms, result)
    except (OSError, SwarmProtocolError) as error:
        result.errors[f"stream: {error.__class__.__name__}"] += 1
    finally:
        result.connected -= 1
        sock.close()


def _read_stream(sock: socket.socket, itl_ms: float, result: SwarmResult) -> None:
    parser = ChunkedEvents()
    previous_s = 0.0
    counted = False
    try:
        while not parser.done:
            data = sock.recv(RECV_BYTES)
            arrived_s = time.perf_counter()
            if not data:
                raise SwarmProtocolError("connection closed mid-response")
            for frame in parser.feed(data):
                if not counted:
                    counted = True
                    result.streaming += 1
                    result.peak_streaming = max(result.peak_streaming, result.streaming)
                if CONTENT_MARK not in frame:
                    continue
                if previous_s:
                    result.gap_minus_itl_ms.append((arrived_s - previous_s) * 1000 - itl_ms)
                previous_s = arrived_s
                result.arrival_s.append(arrived_s)
                result.content_chunks += 1
    finally:
        if counted:
            result.streaming -= 1
    result.responses += 1
