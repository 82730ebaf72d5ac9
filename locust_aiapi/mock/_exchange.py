"""What every endpoint handler gets: the server-wide state and one request/response exchange."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ParamSpec

import gevent

from ._capacity import Capacity
from ._config import MockConfig
from ._errors import ApiError
from ._http import Headers, Request, ResponseWriter
from ._inference import PrefixCache
from ._ratelimits import RateLimits
from ._record import Recorder, RequestRecord
from ._stats import RateLimitWindow, ServerStats

_P = ParamSpec("_P")


@dataclass
class ServerState:
    """Shared by all connections of one server; gevent runs one greenlet at a time, so no locks."""

    config: MockConfig
    capacity: Capacity = field(init=False)
    stats: ServerStats = field(init=False)
    ratelimit: RateLimitWindow | RateLimits = field(init=False)  # RateLimits enforces --rpm / --tpm
    prefix_cache: PrefixCache = field(init=False)
    recorder: Recorder | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.capacity = Capacity(self.config.max_concurrency, self.config.max_queue)
        self.stats = ServerStats(self.capacity)
        self.ratelimit = RateLimitWindow(self.config.ratelimit_limit_requests)
        if self.config.rpm or self.config.tpm:
            self.ratelimit = RateLimits(self.config.rpm, self.config.tpm)
        self.prefix_cache = PrefixCache(self.config.prompt_cache_blocks)
        self.rng = random.Random(self.config.seed)

    def request_rng(self) -> random.Random:
        """A private RNG per request: its draws do not depend on how other requests interleave."""
        return random.Random(self.rng.getrandbits(64))


class Exchange:
    """One request and the response to it, with the headers every OpenAI response carries."""

    def __init__(self, state: ServerState, writer: ResponseWriter, request: Request, endpoint: str) -> None:
        self.request = request
        self.rng = state.request_rng()
        self.record = RequestRecord(
            request_id=f"req_{os.urandom(16).hex()}",  # unique across runs, unlike the seeded RNG
            endpoint=endpoint,
            received_s=request.received_s,
        )
        self._writer = writer
        self._ratelimit = state.ratelimit

    @property
    def started(self) -> bool:
        return self._writer.started

    def send_json(
        self,
        status: int,
        body: bytes,
        extra_headers: Sequence[tuple[str, str]] = (),
        first_token: bool = False,
    ) -> None:
        """``first_token``: the body holds the first token (see `_send_first_token`)."""
        headers = [*self._headers(status), ("content-type", "application/json"), *extra_headers]
        self.record.status = status
        if first_token:
            self._send_first_token(self._writer.send, status, headers, body)
        else:
            self._writer.send(status, headers, body)

    def send_error(self, error: ApiError, body: bytes | None = None) -> None:
        """``body``: the error in the endpoint's own format (default: OpenAI's)."""
        self.record.outcome = error.outcome
        self.send_json(error.status, error.body() if body is None else body, error.headers)

    def start_stream(self, first_event: bytes) -> None:
        headers = [*self._headers(200), ("content-type", "text/event-stream; charset=utf-8")]
        self.record.status = 200
        self._writer.start_stream(200, [*headers, ("cache-control", "no-cache")], first_event)

    def send_event(self, event: bytes, first_token: bool = False) -> None:
        """``first_token``: the event holds the first token (see `_send_first_token`)."""
        if first_token:
            self._send_first_token(self._writer.send_data, event)
        else:
            self._writer.send_data(event)

    def _send_first_token(self, send: Callable[_P, None], *args: _P.args, **kwargs: _P.kwargs) -> None:
        """``send(*args)`` bracketed by the record's two stamps: the first token left in between."""
        self.record.first_token_send_s = time.perf_counter()
        send(*args, **kwargs)
        self.record.first_token_s = time.perf_counter()

    def end_stream(self, final_events: Sequence[bytes] = ()) -> None:
        self._writer.end_stream(final_events)

    def _headers(self, status: int) -> Headers:
        processing_ms = round((time.perf_counter() - self.request.received_s) * 1000)
        return [
            ("x-request-id", self.record.request_id),
            ("openai-processing-ms", str(processing_ms)),
            *self._ratelimit.headers(exhausted=status == 429),
        ]


def sleep_until(due_s: float) -> None:
    """Sleep until perf_counter() reaches `due_s`, re-sleeping if the loop timer fires early.

    Callers pass absolute due times (start + offset), so lateness of one chunk never shifts the next.
    """
    delay_s = due_s - time.perf_counter()
    while delay_s > 0:
        gevent.sleep(delay_s)
        delay_s = due_s - time.perf_counter()
