"""``--rpm`` / ``--tpm``: requests and tokens per minute, enforced like the providers' limits.

Two token buckets, each holding a minute's budget and refilling continuously (``limit / 60`` per
second), like OpenAI's: a burst may spend the whole minute's budget at once, then requests are
admitted at the refill rate. A request costs one request and ``prompt tokens + max_tokens`` tokens
(``--output-tokens`` when it sets no ``max_tokens``): providers reserve the largest answer it may
get. A request the buckets cannot pay for is refused with 429 and ``Retry-After`` (the seconds
until they can) and pays nothing. Every chat response carries the ``x-ratelimit-limit``,
``-remaining`` and ``-reset`` headers for requests and tokens (``reset``: time until full again).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ._errors import ApiError, rate_limited
from ._http import Headers
from ._stats import format_duration

__all__ = ["Bucket", "RateLimits"]

_MINUTE_S = 60.0


class Bucket:
    """A minute's budget of ``limit`` units (0: unlimited), refilled continuously."""

    def __init__(self, limit: int, now_s: float) -> None:
        self.limit = limit
        self._level = float(limit)
        self._at_s = now_s

    def _refill(self, now_s: float) -> None:
        rate = self.limit / _MINUTE_S
        self._level = min(float(self.limit), self._level + (now_s - self._at_s) * rate)
        self._at_s = now_s

    def wait_s(self, cost: int, now_s: float) -> float:
        """Seconds until ``cost`` can be paid (0: now); a cost beyond the limit is paid when full."""
        if not self.limit:
            return 0.0
        self._refill(now_s)
        missing = min(float(cost), float(self.limit)) - self._level
        return max(0.0, missing) / (self.limit / _MINUTE_S)

    def pay(self, cost: int) -> None:
        if self.limit:
            self._level = max(0.0, self._level - cost)

    def remaining(self, now_s: float) -> int:
        self._refill(now_s)
        return int(self._level)

    def reset_s(self, now_s: float) -> float:
        self._refill(now_s)
        return (self.limit - self._level) / (self.limit / _MINUTE_S)


class RateLimits:
    """The request and token buckets of one mock server."""

    def __init__(self, rpm: int, tpm: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        now = clock()
        self.requests, self.tokens = Bucket(rpm, now), Bucket(tpm, now)

    def admit(self, tokens: int) -> None:
        """Pay for one request of ``tokens`` tokens, or raise the 429 to answer with."""
        now = self._clock()
        wait_s = max(self.requests.wait_s(1, now), self.tokens.wait_s(tokens, now))
        if wait_s > 0.0:
            which = "requests" if self.requests.wait_s(1, now) > 0.0 else "tokens"
            limit = self.requests.limit if which == "requests" else self.tokens.limit
            raise self._refused(which, limit, wait_s)
        self.requests.pay(1)
        self.tokens.pay(tokens)

    def _refused(self, which: str, limit: int, wait_s: float) -> ApiError:
        unit = "RPM" if which == "requests" else "TPM"
        return rate_limited(f"Rate limit reached on {which} per min ({unit}): Limit {limit}.", wait_s)

    def headers(self, *, exhausted: bool = False) -> Headers:
        now = self._clock()
        headers: Headers = []
        for name, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            if bucket.limit:
                headers += [
                    (f"x-ratelimit-limit-{name}", str(bucket.limit)),
                    (f"x-ratelimit-remaining-{name}", str(bucket.remaining(now))),
                    (f"x-ratelimit-reset-{name}", format_duration(bucket.reset_s(now))),
                ]
        return headers
