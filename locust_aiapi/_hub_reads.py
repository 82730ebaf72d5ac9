"""Socket code, part four: a streamed body read in the hub's own callbacks (the per-chunk hot path).

A greenlet that waits for each chunk of its stream pays, per chunk, for a gevent ``Waiter``, an io
watcher started and stopped, and two greenlet switches through the hub. Here the user's greenlet waits
once per body: the socket's io watcher stays started for the whole body and its callback, run by the
hub as soon as the socket is readable, reads once (:meth:`BodyReader.read_ready`) and hands the bytes to
the stream's recorder (``benchmarks/chunk_cost.py``).

What does not change: each read is stamped right after it returns, with the kernel's stamp where the
socket has one; the body's single timer (``BodyReader``) still throws into the user's greenlet, which
then closes the watcher before anything can close the socket. The loop runs the callback once per
iteration while the socket stays readable (one read each time), so a socket that a server keeps full
takes turns with every other, as the :class:`~locust_aiapi._head.Pacer` made a reading greenlet do.
Anything a read or the recorder raises ends that stream, in the user's greenlet; nothing reaches the hub.

HTTPS too: a :class:`~locust_aiapi._tls_stream.TlsStream` over a gevent socket reads its raw socket and
decrypts in the callback (``recvmsg_ready``). A socket of another kind (gevent's ``SSLSocket`` where the
kernel gives no stamps, a socket of another library) is read by the user's greenlet (:func:`pump`).
"""

from __future__ import annotations

from typing import Any

import gevent
from gevent.hub import Waiter

from ._body_reader import BodyReader
from ._records import RequestRecord
from ._stream import StreamRecorder

__all__ = ["pump"]

_READ = 1  # libev's EV_READ


def pump(record: RequestRecord, recorder: StreamRecorder, reader: BodyReader) -> None:
    """Feed the body to the recorder as it arrives: from the hub's callbacks where the reader can read
    its socket that way, else in this greenlet. Stops early when the recorder refuses more (a bound)."""
    fd = reader.fileno
    if fd is None:
        _pump_here(record, recorder, reader)
        return
    stream = _HubRead(record, recorder, reader)
    data = reader.buffered()  # the bytes that came with the head
    if (data and not stream.take(data)) or reader.done:
        return
    stream.run(fd)


def _pump_here(record: RequestRecord, recorder: StreamRecorder, reader: BodyReader) -> None:
    """Feed what arrives to the recorder; until the first token also watch for it (the TTFT deadline
    ends then), after that only feed."""
    while data := reader.read():
        if not recorder.feed(data, reader.arrived_s, reader.lag_s):
            return
        if record.first_token_s is not None or record.token_chunk_times_s:
            reader.token_arrived()
            break
    while data := reader.read():
        if not recorder.feed(data, reader.arrived_s, reader.lag_s):
            return


class _HubRead:
    """One body read by the hub's callbacks, and the greenlet that waits for its end."""

    __slots__ = ("_awaiting_first", "_reader", "_record", "_recorder", "_waiter", "_watcher")

    def __init__(self, record: RequestRecord, recorder: StreamRecorder, reader: BodyReader) -> None:
        self._record = record
        self._recorder = recorder
        self._reader = reader
        self._awaiting_first = True
        self._watcher: Any = None
        self._waiter: Waiter | None = None

    def run(self, fd: int) -> None:
        """Read ``fd`` until the body is over; raises what ended it otherwise."""
        hub = gevent.get_hub()
        watcher = self._watcher = hub.loop.io(fd, _READ)
        self._waiter = Waiter(hub)
        watcher.start(self._on_readable)
        try:
            self._waiter.get()
        finally:
            watcher.close()

    def _on_readable(self) -> None:
        """In the hub: read once and hand the bytes on; at the end (or on an error) wake the waiting
        greenlet. Once per chunk: written out."""
        reader = self._reader
        try:
            data = reader.read_ready()
            if data and not self.take(data):
                self._end(None)
                return
        except Exception as exc:
            self._end(exc)
            return
        if reader.done:
            self._end(None)

    def _end(self, exc: Exception | None) -> None:
        self._watcher.stop()
        if exc is None:
            self._waiter.switch(None)  # type: ignore[union-attr]
        else:
            self._waiter.throw(exc)  # type: ignore[union-attr]

    def take(self, data: bytes) -> bool:
        """Hand body bytes to the recorder; until the first token also watch for it (the TTFT deadline
        ends then: comments and keep-alive bytes are no progress towards a first token)."""
        reader = self._reader
        if not self._recorder.feed(data, reader.arrived_s, reader.lag_s):
            return False
        if self._awaiting_first:
            record = self._record
            if record.first_token_s is not None or record.token_chunk_times_s:
                self._awaiting_first = False
                reader.token_arrived()
        return True
