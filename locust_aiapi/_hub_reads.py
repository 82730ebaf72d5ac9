"""Socket code, part four: a streamed body read in the hub's own callbacks (the per-chunk hot path).

A greenlet that waits for each chunk of its stream pays, per chunk, for a gevent ``Waiter``, an io
watcher started and stopped, and two greenlet switches through the hub. Here the user's greenlet waits
once per body: the gevent socket's own read watcher stays started for the whole body and its callback,
run by the hub as soon as the socket is readable, reads once (:meth:`BodyReader.read_ready`) and hands
the bytes to the stream's recorder (``benchmarks/paired_cost.py``: -10 % of Locust's CPU per chunk).

What does not change: each read is stamped right after it returns, with the kernel's stamp where the
socket has one; the body's single timer (``BodyReader``) still throws into the user's greenlet, which
then stops the watcher; a ``close()`` of the socket in another greenlet reaches the read as it reaches
any wait on that watcher (gevent's ``cancel_wait``: :meth:`_HubRead.throw`). The loop runs the callback
once per iteration while the socket stays readable (one read each time), so a socket that a server
keeps full takes turns with every other, as the :class:`~locust_aiapi._head.Pacer` made a reading
greenlet do. Anything a read or the recorder raises ends that stream, in the user's greenlet; nothing
reaches the hub.

HTTPS too: a :class:`~locust_aiapi._tls_stream.TlsStream` over a gevent socket reads its raw socket and
decrypts in the callback (``recvmsg_ready``). What it already holds in memory (records that came with
the head, a ``close_notify`` behind the data) no readiness announces, so it is read at once. An answer
OpenSSL asks for (a key update, a renegotiation) that cannot be sent at once is not waited for in the
hub: the user's greenlet sends it and reads the rest of the body itself. A socket of another kind
(gevent's ``SSLSocket`` where the kernel gives no stamps, a socket of another library) is read by the
user's greenlet (:func:`pump`).
"""

from __future__ import annotations

from typing import Any

import gevent
from gevent.exceptions import InvalidSwitchError
from gevent.hub import Waiter

from ._body_reader import BodyReader
from ._first_token_poll import FirstTokenPoll, first_token_poll
from ._records import RequestRecord
from ._stream import StreamRecorder

__all__ = ["pump"]

# libev runs the watchers that one poll found ready highest priority first: a body still waiting for
# its first token is read before the others (a late first read is what TTFT cannot afford: once the
# next token has come too, the kernel keeps only the newest segment's stamp), then at the usual 0.
# Within a long iteration, ``_first_token_poll`` reads it between the others' reads.
FIRST_TOKEN_PRIORITY = 1


def pump(record: RequestRecord, recorder: StreamRecorder, reader: BodyReader) -> None:
    """Feed the body to the recorder as it arrives: from the hub's callbacks where the reader can read
    its socket that way, else in this greenlet. Stops early when the recorder refuses more (a bound)."""
    read_event = reader.read_event
    if read_event is None:
        _pump_here(record, recorder, reader)
        return
    stream = _HubRead(record, recorder, reader)
    data = reader.buffered()  # the bytes that came with the head
    if (data and not stream.take(data)) or reader.done:
        return
    try:
        stream.run(read_event)
    except _SendWaits:  # a TLS answer must wait for the socket: never in the hub, so here, and read on here
        reader.flush_sends()
        _pump_here(record, recorder, reader)


class _SendWaits(Exception):
    """What the hub read left to send would wait for the socket (TLS: a key update, a renegotiation)."""


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

    __slots__ = (
        "_awaiting_first",
        "_fd",
        "_over",
        "_poll",
        "_reader",
        "_record",
        "_recorder",
        "_waiter",
        "_watcher",
    )

    def __init__(self, record: RequestRecord, recorder: StreamRecorder, reader: BodyReader) -> None:
        self._record = record
        self._recorder = recorder
        self._reader = reader
        self._awaiting_first = True
        self._over = False
        self._watcher: Any = None
        self._waiter: Waiter | None = None
        self._poll: FirstTokenPoll = first_token_poll()
        self._fd = -1  # the socket's number while in the poll's set (a closed libuv watcher forgets its own)

    def run(self, read_event: Any) -> None:
        """Read until the body is over, when the socket's read watcher fires; raises what ended it
        otherwise. TLS records that came with the head are read at once: no readiness announces them."""
        hub = gevent.get_hub()
        self._watcher = read_event
        waiter = self._waiter = Waiter(hub)
        try:
            if self._awaiting_first:  # both undone by the first token (``_first_token_read``) or below
                read_event.priority = FIRST_TOKEN_PRIORITY  # stopped: a priority is set before a start
                self._fd = read_event.fd
                self._poll.add(self._fd, self)
            read_event.start(self.on_readable)
            if self._reader.holds_more:
                hub.loop.run_callback(self.on_readable)
            if waiter.get() is not self:
                raise InvalidSwitchError(
                    "a streamed body's greenlet was woken by something else than its end"
                )
        finally:
            self._over = True
            read_event.stop()
            read_event.priority = 0  # the socket's next waits (the next request's head) as usual
            if self._awaiting_first:
                self._poll.discard(self._fd, self)

    def on_readable(self) -> None:
        """In the hub: read and hand the bytes on (once; at once again for an end TLS holds after the
        data, which no readiness announces); at the end, or on an error, wake the waiting greenlet.
        Then read the first tokens that are due (:mod:`~locust_aiapi._first_token_poll`)."""
        if self._over:
            return
        self._read_once()
        read_s, poll = self._reader.read_s, self._poll
        if read_s >= poll.due_s:
            poll.poll_if_due(read_s)

    def _read_once(self) -> None:
        """Once per chunk: written out."""
        reader = self._reader
        try:
            # a second read only for the end a TLS read left in memory (``BodyReader.end_held``): after a
            # read, TLS holds nothing else a read could take without the network; that read ends the body
            for _ in (0, 1):  # not range(2): one call less per chunk
                data = reader.read_ready()
                if (data and not self.take(data)) or reader.done:
                    self._end(None)
                    return
                if reader.send_waits:
                    self._end(_SendWaits())
                    return
                if reader.found_nothing or not reader.end_held:
                    return
            gevent.get_hub().loop.run_callback(self.on_readable)  # never expected: no hang if it happens
        except Exception as exc:
            self._end(exc)

    def throw(self, exc: BaseException) -> None:
        """gevent's ``cancel_wait``: the socket was closed (in another greenlet) while we read it."""
        if not self._over:
            self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        self._over = True
        self._watcher.stop()
        if exc is None:
            self._waiter.switch(self)  # type: ignore[union-attr]
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
                self._first_token_read()
        return True

    def _first_token_read(self) -> None:
        """The rest of the body is read at the usual priority (a started watcher must be stopped to
        change it; before ``run`` there is no watcher, and ``run`` sets none for a first token in)."""
        watcher = self._watcher
        if watcher is None:
            return
        self._poll.discard(self._fd, self)
        if watcher.active and watcher.priority:
            watcher.stop()
            watcher.priority = 0
            watcher.start(self.on_readable)
