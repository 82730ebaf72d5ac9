"""A sans-IO Server-Sent Events decoder (WHATWG HTML, "Interpreting an event stream").

Feed it the bytes of a ``text/event-stream`` body as they arrive; it returns the events those
bytes completed. It never touches sockets or clocks, so the I/O loop can stamp the arrival
time of each chunk and hand the bytes over.

Deliberate differences from the spec:

* At end of stream (:meth:`SSEDecoder.end`) a last line without a terminator and a pending
  event without the final blank line are still dispatched. The spec discards them, but many
  servers omit the final blank line, and a truncated ``data:`` line is better reported by the
  dialect parser (as invalid JSON) than silently dropped.
* ``retry`` is attached to the event whose block contained it (the spec only updates the
  reconnection time); it is reset after each dispatch. ``id`` follows the spec: it is the
  last event ID seen so far and persists across events.

Bounds (a server controls every byte): a line longer than ``max_line_bytes`` or an event whose
``data`` exceeds ``max_event_bytes`` (the UTF-8 bytes of its ``data`` values) stops the decoder with
:attr:`SSEDecoder.error` set; the bytes of that line are dropped as they arrive, so a 50 MB line
never sits in memory whole.

Speed (``benchmarks/chunk_cost.py``; a read is usually one ``data: {...}\\n\\n`` event): a ``data:``
line is recognised on its bytes and its value kept undecoded; an event's text is decoded once, when
it is dispatched (one decode per event instead of one per line, no ``str.partition``). ``feed``
decides from the read's last byte whether it completed a line, so a typical read is scanned once
(by ``splitlines``). Per event: 1.9 -> 1.2 µs on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_EVENT_BYTES", "MAX_LINE_BYTES", "SSEDecoder", "SSEEvent"]

MAX_LINE_BYTES: Final = 1 << 20
"""Default bound on one line (an OpenAI chunk is ~200 bytes; a whole tool call fits easily)."""
MAX_EVENT_BYTES: Final = 4 << 20
"""Default bound on the ``data`` of one event (the sum of its ``data:`` lines)."""

_BOM = b"\xef\xbb\xbf"
_LF = 0x0A
_CR = 0x0D
_COLON = 0x3A


@dataclass(slots=True, frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


# The generated __init__ of a frozen dataclass sets each field through object.__setattr__: about
# 1 µs per event on CPython 3.11, a third of the decoder's time per typical chunk. The decoder
# builds its events through the slot descriptors instead: the same object for half the cost.
_new_object = object.__new__
_set_data = vars(SSEEvent)["data"].__set__
_set_event = vars(SSEEvent)["event"].__set__
_set_id = vars(SSEEvent)["id"].__set__
_set_retry = vars(SSEEvent)["retry"].__set__


class _EventTooLarge(Exception):
    """Internal: the data of the current event passed ``max_event_bytes``."""


class SSEDecoder:
    """Incremental SSE decoder: ``feed()`` bytes as they arrive, then call ``end()`` once."""

    __slots__ = (
        "_at_start",
        "_data",
        "_data_bytes",
        "_event_type",
        "_last_id",
        "_max_event_bytes",
        "_max_line_bytes",
        "_pending",
        "_pending_bytes",
        "_retry",
        "_skip_lf",
        "comments",
        "error",
    )

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max_line_bytes = max_line_bytes
        self._max_event_bytes = max_event_bytes
        self.error: str | None = None
        """Why decoding stopped (a bound was exceeded); feed() and end() then return nothing."""
        self.comments = 0
        """Comment lines seen (keep-alives): a body of only comments is an SSE stream, cut short."""
        # bytes of a line whose terminator has not arrived yet
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        # the previous chunk ended with CR: a LF starting the next one belongs to that CRLF
        self._skip_lf = False
        self._at_start = True
        self._data: list[bytes] = []  # the values of this event's data lines, undecoded
        self._data_bytes = 0
        self._event_type = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Consume the next bytes of the stream; return the events they completed."""
        if self.error is not None or self._at_start or self._skip_lf:
            data = self._start_of(data)
        if not data:
            return []
        last = data[-1]
        if last != _LF and last != _CR and _LF not in data and _CR not in data:
            self._keep_pending(data)  # no line completed: keep the bytes (cheaply) until a terminator arrives
            return []
        if self._pending:
            self._pending.append(data)
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
        # bytes.splitlines() breaks only on CR, LF and CRLF (unlike str.splitlines()), and
        # splitting before decoding keeps multi-byte UTF-8 sequences of an unfinished line intact.
        lines = data.splitlines()
        tail = None
        if last == _CR:
            self._skip_lf = True
        elif last != _LF:
            tail = lines.pop()
        if len(data) > self._max_line_bytes:  # rare (reads are 64 KiB): look for an overlong line
            events = self._process_long_lines(lines)
        else:
            events = self._process_lines(lines)
        if tail is not None and self.error is None:
            self._keep_pending(tail)
        return events

    def lone_data(self, data: bytes) -> tuple[bytes, str] | None:
        """``(value, event type)`` when ``data`` is exactly one event of one ``data:`` line, after at most
        one ``event:`` line (``data: V\\n\\n``, ``event: T\\ndata: V\\n\\n``: how servers send one
        chunk per read), with nothing pending; else None. Nothing is consumed either way: ``feed(data)``
        would return ``[lone_event(value, event_type)]`` and leave the decoder as it is. This lets a
        parser read the value's bytes without an event object or a decode.
        """
        if (
            self._pending
            or self._data
            or self._event_type
            or self._retry is not None
            or self._at_start
            or self._skip_lf
            or self.error is not None
            or data[-2:] != b"\n\n"
            or _CR in data  # an int: a bytes needle costs bytes.__contains__ a TypeError first
        ):
            return None
        end = len(data) - 2
        first = data.find(_LF)  # an int needle, and no start for startswith: ~0.1 µs each
        event_type = "message"
        if first == end:
            if not data.startswith(b"data:"):
                return None
            start = 0
        elif data.startswith(b"event:") and data.find(_LF, first + 1) == end:
            if first > self._max_line_bytes:
                return None
            start = first + 1
            if not data.startswith(b"data:", start):
                return None
            name = data[7:first] if data[6] == 0x20 else data[6:first]
            event_type = name.decode("utf-8", "replace") or event_type
        else:
            return None
        if end - start > self._max_line_bytes:
            return None
        value = data[start + 6 if data[start + 5] == 0x20 else start + 5 : end]
        return (value, event_type) if len(value) <= self._max_event_bytes else None

    def lone_event(self, value: bytes, event_type: str) -> SSEEvent:
        """The event ``feed`` would have returned for the read that :meth:`lone_data` took apart."""
        return SSEEvent(value.decode("utf-8", "replace"), event_type, self._last_id, None)

    def _start_of(self, data: bytes) -> bytes:
        """``data`` without what the previous chunk or the stream's start already accounted for."""
        if self.error is not None:
            return b""
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == _LF:
                data = data[1:]
        if self._at_start:
            data = self._strip_bom(data)
        return data

    def _keep_pending(self, data: bytes) -> None:
        self._pending_bytes += len(data)
        if self._pending_bytes > self._max_line_bytes:
            self._stop(f"an SSE line is longer than {self._max_line_bytes} bytes")
        else:
            self._pending.append(data)

    def _stop(self, error: str) -> None:
        """Give up on the stream: drop everything buffered, decode nothing more."""
        if self.error is None:
            self.error = error
        self._pending.clear()
        self._pending_bytes = 0
        self._data.clear()
        self._data_bytes = 0

    def end(self) -> list[SSEEvent]:
        """Signal end of stream; return the unterminated last event, if any (see module doc)."""
        events: list[SSEEvent] = []
        if self.error is not None:
            return events
        if self._pending:
            line = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            events = self._process_lines([line])
            if self.error is not None:
                return events
        event = self._dispatch()
        if event is not None:
            events.append(event)
        self._skip_lf = False
        return events

    def _strip_bom(self, data: bytes) -> bytes:
        head = b"".join((*self._pending, data)) if self._pending else data
        self._pending.clear()
        self._pending_bytes = 0
        if len(head) < len(_BOM) and _BOM.startswith(head):
            # could still become a BOM: wait for more bytes
            if head:
                self._pending.append(head)
            return b""
        self._at_start = False
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _process_long_lines(self, lines: list[bytes]) -> list[SSEEvent]:
        """The lines before the first one longer than the bound; then stop."""
        limit = self._max_line_bytes
        for position, line in enumerate(lines):
            if len(line) > limit:
                events = self._process_lines(lines[:position])
                self._stop(f"an SSE line is longer than {limit} bytes")
                return events
        return self._process_lines(lines)

    def _process_lines(self, lines: list[bytes]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data
        try:
            for raw in lines:
                if not raw:
                    event = self._dispatch()
                    if event is not None:
                        events.append(event)
                elif raw.startswith(b"data:"):  # the hot path: kept as bytes, decoded once per event
                    value = raw[6:] if raw[5:6] == b" " else raw[5:]
                    data.append(value)
                    self._data_bytes += len(value)
                    if self._data_bytes > self._max_event_bytes:
                        raise _EventTooLarge
                elif raw[0] == _COLON:  # lines starting with a colon are comments
                    self.comments += 1
                else:
                    self._process_field(raw.decode("utf-8", "replace"))
        except _EventTooLarge:  # raised, not checked per line: no cost on the common path
            self._stop(f"an SSE event holds more than {self._max_event_bytes} bytes of data")
        return events

    def _process_field(self, line: str) -> None:
        """A line that is not ``data: ...`` nor a comment (``data`` without a colon is an empty one)."""
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(b"")
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        # any other field name is ignored, as the spec requires

    def _dispatch(self) -> SSEEvent | None:
        data = self._data
        event_type = self._event_type or "message"
        retry = self._retry
        self._event_type = ""
        self._retry = None
        if not data:
            return None
        # one decode per event, after the join: the same text as decoding each line (a LF is never
        # part of a UTF-8 sequence, so a broken sequence at a line's end is replaced the same way)
        text = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", "replace")
        data.clear()
        self._data_bytes = 0
        event: SSEEvent = _new_object(SSEEvent)
        _set_data(event, text)
        _set_event(event, event_type)
        _set_id(event, self._last_id)
        _set_retry(event, retry)
        return event
