"""Retry policy: exponential back-off with jitter that honours ``Retry-After`` (pure, no I/O)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ._records import FailureKind

__all__ = ["RETRYABLE_KINDS", "RetryPolicy", "parse_retry_after", "parse_retry_after_ms", "retry_after_s_of"]

RETRYABLE_KINDS = frozenset(
    {FailureKind.RATE_LIMITED, FailureKind.SERVER_ERROR, FailureKind.OVERLOADED, FailureKind.CONNECTION_ERROR}
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_retries`` extra attempts; delay ``base * 2**n + U(0, base)`` capped at ``max_delay_s``.

    A ``Retry-After`` from the server is a lower bound on the delay, and ``max_delay_s`` caps that
    too: a server answering ``Retry-After: 3600`` must not park every user for the rest of the run.
    Off by default.
    """

    max_retries: int = 0
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def should_retry(self, kind: FailureKind | None, retries_done: int) -> bool:
        return kind in RETRYABLE_KINDS and retries_done < self.max_retries

    def delay_s(self, retries_done: int, retry_after_s: float | None, rng: random.Random) -> float:
        backoff = self.base_delay_s * (2.0**retries_done) + rng.uniform(0.0, self.base_delay_s)
        delay = min(backoff, self.max_delay_s)
        if retry_after_s is not None and math.isfinite(retry_after_s):
            delay = max(delay, retry_after_s)
        return min(delay, self.max_delay_s)


def parse_retry_after(value: str | None, now_epoch_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    ``inf``, ``nan`` and other values that are not a finite number of seconds are ignored (None).
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_epoch_s)


def parse_retry_after_ms(value: str | None) -> float | None:
    """Seconds to wait from Azure OpenAI's (and OpenAI's SDK's) ``retry-after-ms`` header."""
    if not value:
        return None
    try:
        milliseconds = float(value.strip())
    except ValueError:
        return None
    return milliseconds / 1000.0 if 0.0 <= milliseconds < float("inf") else None


def retry_after_s_of(retry_after_ms: str | None, retry_after: str | None, now_epoch_s: float) -> float | None:
    """The wait a 429 asks for: ``retry-after-ms`` when valid (Azure sends both), else ``Retry-After``."""
    from_ms = parse_retry_after_ms(retry_after_ms)
    return from_ms if from_ms is not None else parse_retry_after(retry_after, now_epoch_s)
