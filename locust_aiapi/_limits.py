"""Every bound on what one response may make us hold or wait for, and the deadlines of one attempt (pure).

A load test exists to see what a server does when it goes wrong, so nothing a server controls is
unbounded: header bytes and count, the time headers take, error and non-streamed body sizes, the time
to the first token and to the end of the request. Exceeding a bound is a failure of a clear kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._errors import ResponseError
from ._records import FailureKind

if TYPE_CHECKING:  # the options are read by the user; this module stays below them
    from ._options import AIOptions

__all__ = ["Deadlines", "DeadlineExceeded", "Limits", "ResponseTooLarge"]

KIB = 1024
MIB = 1024 * KIB
_MIN_WAIT_S = 0.001


class ResponseTooLarge(ResponseError):
    """The server sent more than we keep: a failure, never an allocation."""

    kind = FailureKind.RESPONSE_TOO_LARGE


class DeadlineExceeded(ResponseError):
    """A deadline of the attempt passed (first token, whole request, complete headers)."""

    kind = FailureKind.TIMEOUT


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one attempt. ``None`` turns a timeout off (the idle ``network_timeout`` still holds)."""

    max_header_bytes: int = 64 * KIB  # status line + headers, interim 1xx responses included
    max_headers: int = 100
    header_time_s: float = 10.0  # from the first byte of the response to the end of its headers
    max_error_body_bytes: int = 64 * KIB  # read this much of an error body, then close the connection
    max_body_bytes: int = 64 * MIB  # a non-streamed answer (chat completion, embeddings)
    ttft_timeout_s: float | None = 60.0  # streamed chat: from the send to the first token
    request_timeout_s: float | None = 600.0  # from the send to the end of the body

    @classmethod
    def from_options(cls, options: AIOptions) -> Limits:
        """From ``--ai-ttft-timeout``, ``--ai-request-timeout`` (0: off) and ``--ai-max-body-mib``."""
        return cls(
            ttft_timeout_s=options.ttft_timeout_s or None,
            request_timeout_s=options.request_timeout_s or None,
            max_body_bytes=int(options.max_body_mib * MIB),
        )


def _seconds(value: float) -> str:
    return f"{value:g}"


class Deadlines:
    """The absolute ``perf_counter`` deadlines of one attempt; the TTFT one ends with the first token."""

    __slots__ = ("limits", "request_s", "ttft_s")

    def __init__(self, limits: Limits, start_s: float, first_token: bool) -> None:
        self.limits = limits
        request, ttft = limits.request_timeout_s, limits.ttft_timeout_s
        self.request_s = start_s + request if request else None
        self.ttft_s = start_s + ttft if ttft and first_token else None

    def token_arrived(self) -> None:
        self.ttft_s = None

    def next_s(self) -> float | None:
        """The earliest deadline still running (None: none)."""
        if self.ttft_s is None:
            return self.request_s
        if self.request_s is None:
            return self.ttft_s
        return min(self.ttft_s, self.request_s)

    def expired(self, now_s: float) -> DeadlineExceeded | None:
        """The failure for the first deadline that has passed at ``now_s``, else None."""
        if self.ttft_s is not None and now_s >= self.ttft_s and self.limits.ttft_timeout_s:
            return DeadlineExceeded(f"no token within {_seconds(self.limits.ttft_timeout_s)} s")
        if self.request_s is not None and now_s >= self.request_s and self.limits.request_timeout_s:
            seconds = _seconds(self.limits.request_timeout_s)
            return DeadlineExceeded(f"request not complete within {seconds} s")
        return None

    def header_expired(self, now_s: float, first_byte_s: float) -> DeadlineExceeded | None:
        if now_s - first_byte_s >= self.limits.header_time_s:
            seconds = _seconds(self.limits.header_time_s)
            return DeadlineExceeded(f"response headers not complete within {seconds} s of their first byte")
        return self.expired(now_s)

    def wait_s(self, now_s: float, idle_s: float | None, first_byte_s: float | None) -> float | None:
        """How long one blocking read may wait: the idle timeout or the next deadline, the sooner."""
        candidates = [idle_s] if idle_s else []
        deadline = self.next_s()
        if deadline is not None:
            candidates.append(deadline - now_s)
        if first_byte_s is not None:
            candidates.append(first_byte_s + self.limits.header_time_s - now_s)
        # a timeout of 0 would make the socket non-blocking (EAGAIN, not a timeout)
        return max(_MIN_WAIT_S, min(candidates)) if candidates else None
