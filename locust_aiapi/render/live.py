"""The console's live line: one line of LLM figures every few seconds of a headless run.

Locust's own table (every 2 s) shows request counts and E2E times; this line adds what it cannot: the
time left, the shape's phase, TTFT of the last seconds, output tokens/s, failures by kind and the
client lag (how late this load generator read what had arrived). It is built to stay whole at 100
columns::

    LLM 0:05/0:10  2 users  phase 1/2  9.5 req/s  TTFT p50/p95 41/45 ms  70 tok/s  0 failed  lag p99 0.31 ms

Rates and TTFT are of the requests that ended in the last few seconds (the window); the failure
counts and the client lag are of the whole run so far. Once the lag p99 exceeds
``--ai-max-client-lag-ms`` it reads ``CLIENT-BOUND lag p99 12 ms``: add workers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .client_lag import short_text
from .format import CONSOLE

__all__ = ["LIVE_WIDTH", "LiveStatus", "clock", "live_line"]

LIVE_WIDTH = 100
_SEPARATOR = "  "  # like the columns of Locust's own table: " | " would cost a failure kind


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """What the live line shows: the run so far, and a recent window of ``window_s`` seconds."""

    elapsed_s: float
    total_s: float | None  # None: runs until stopped
    users: int
    phase: str | None  # the shape's current phase ("step 2/3: 100 users"), None without a shape
    window_s: float  # 0.0: no complete window yet
    requests_per_s: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    output_tokens_per_s: float | None
    requests: int  # whole run so far
    failures_by_kind: tuple[tuple[str, int], ...]  # whole run so far, most frequent first
    client_lag_p99_ms: float | None = None  # whole run so far; None: nothing measured yet
    client_bound: bool = False  # the lag p99 is over --ai-max-client-lag-ms


def clock(seconds: float) -> str:
    """``75.4`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _head(status: LiveStatus, phase_label: bool) -> list[str]:
    elapsed = clock(status.elapsed_s)
    parts = [f"LLM {elapsed}/{clock(status.total_s)}" if status.total_s else f"LLM {elapsed}"]
    parts.append(f"{status.users} users")
    if status.phase:
        parts.append(status.phase if phase_label else status.phase.partition(":")[0])
    return parts


def _window(status: LiveStatus) -> list[str]:
    if not status.window_s:
        return ["no request ended yet"]
    number = CONSOLE.number
    p50, p95 = number(status.ttft_p50_ms, 0), number(status.ttft_p95_ms, 0)
    rate = status.requests_per_s  # a decimal only where it is not noise
    return [
        f"{number(rate, 1 if rate is not None and rate < 10.0 else 0)} req/s",
        f"TTFT p50/p95 {p50}/{p95} ms",
        f"{number(status.output_tokens_per_s, 0)} tok/s",
    ]


def _lag(status: LiveStatus) -> list[str]:
    """Last: when the line is too long, it is what moves to the second line."""
    lag = short_text(status.client_lag_p99_ms, status.client_bound)
    return [lag] if lag else []


def _failures(status: LiveStatus, shown: int) -> str:
    """``29 server_error, 3 rate_limited`` (failed requests by kind), ``0 failed`` without any."""
    failed = sum(n for _, n in status.failures_by_kind)
    kinds = len(status.failures_by_kind)
    if not failed or not shown:
        return f"{failed} failed" + (f" ({kinds} kind{'s' if kinds > 1 else ''})" if failed else "")
    texts = [f"{n} {kind}" for kind, n in status.failures_by_kind[:shown]]
    if shown < kinds:
        texts.append(f"+{kinds - shown} more")
    return ", ".join(texts)


def live_line(status: LiveStatus, width: int = LIVE_WIDTH) -> str:
    """The line, at most ``width`` characters: when it is too long, the phase's label goes first;
    then it continues on an indented second line (several failure kinds, hours-long runs with
    five-digit rates), the rarest kinds counted as ``+N more`` only if they fill a line of their own."""
    kinds = len(status.failures_by_kind)
    for phase_label in (True, False):
        parts = [*_head(status, phase_label), *_window(status), _failures(status, kinds), *_lag(status)]
        line = _SEPARATOR.join(parts)
        if len(line) <= width:
            return line
    shown = next((n for n in range(kinds, 0, -1) if len(_failures(status, n)) <= width - 4), min(kinds, 1))
    parts = [*_head(status, False), *_window(status), _failures(status, shown), *_lag(status)]
    return "\n    ".join(_SEPARATOR.join(row) for row in _rows(parts, width - 4))


def _rows(parts: list[str], width: int) -> list[list[str]]:
    rows: list[list[str]] = [[]]
    for part in parts:
        if rows[-1] and len(_SEPARATOR.join([*rows[-1], part])) > width:
            rows.append([])
        rows[-1].append(part)
    return rows
