"""Ground truth for benchmarks: one JSON line per finished API request, with raw perf_counter stamps.

`time.perf_counter()` is CLOCK_MONOTONIC on Linux, so the stamps compare directly with those a load
generator on the same machine takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gevent
import orjson

FLUSH_INTERVAL_S = 1.0


@dataclass
class RequestRecord:
    request_id: str
    endpoint: str
    received_s: float
    fault: str | None = None
    first_token_s: float | None = None  # perf_counter() after the first token's send returned
    first_token_send_s: float | None = None  # ... and before it began: the token left in between
    end_s: float | None = None
    completion_tokens: int = 0
    prompt_tokens: int = 0
    status: int = 0
    outcome: str = "ok"
    # chat streams: how late each content chunk's sendall returned, in microseconds after it was due
    chunk_late_us: list[int] = field(default_factory=list)


class Recorder:
    """Appends records to a buffered file; a background greenlet flushes it every second.

    Writes land in the file object's buffer, so recording costs the serving loop no system call per
    request; `close()` flushes whatever is left (it runs on stop, including SIGTERM).
    """

    def __init__(self, path: str) -> None:
        self._file = open(path, "wb", buffering=256 * 1024)  # noqa: SIM115 -- closed in close()
        self._flusher = gevent.spawn(self._flush_periodically)

    def write(self, record: RequestRecord) -> None:
        self._file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        self._flusher.kill()
        if not self._file.closed:
            self._file.flush()
            self._file.close()

    def _flush_periodically(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            self._file.flush()
