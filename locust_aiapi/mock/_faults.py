"""Which fault, if any, a request gets: forced by the `x-mock-fault` header or drawn from the rates."""

from __future__ import annotations

import enum
import random

from ._config import MockConfig
from ._errors import bad_request, overloaded, rate_limited, server_error

FAULT_HEADER = "x-mock-fault"


class Fault(str, enum.Enum):
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    OVERLOADED = "529"  # Anthropic's "overloaded"; forced with the header only, no rate of its own
    STREAM_ERROR = "stream_error"
    TRUNCATE = "truncate"


STREAM_ONLY_FAULTS = frozenset({Fault.STREAM_ERROR, Fault.TRUNCATE})


def choose_fault(
    config: MockConfig, rng: random.Random, headers: dict[str, str], *, streaming: bool
) -> Fault | None:
    """The fault to inject, or None.

    One uniform draw per request against cumulative bands keeps each rate exact and the RNG sequence
    independent of which faults are enabled. Stream faults do not apply to non-streamed answers.
    """
    draw = rng.random()
    forced = headers.get(FAULT_HEADER)
    fault = _parse_forced(forced) if forced is not None else _draw(config, draw)
    if fault in STREAM_ONLY_FAULTS and not streaming:
        return None
    return fault


def _parse_forced(value: str) -> Fault:
    try:
        return Fault(value.strip().lower())
    except ValueError:
        choices = ", ".join(fault.value for fault in Fault)
        raise bad_request(f"{FAULT_HEADER} must be one of {choices}, got {value!r}") from None


def _draw(config: MockConfig, draw: float) -> Fault | None:
    bands = (
        (config.rate_429, Fault.RATE_LIMIT),
        (config.rate_500, Fault.SERVER_ERROR),
        (config.rate_stream_error, Fault.STREAM_ERROR),
        (config.rate_truncate, Fault.TRUNCATE),
    )
    upper = 0.0
    for rate, fault in bands:
        upper += rate
        if draw < upper:
            return fault
    return None


def raise_error_fault(config: MockConfig, fault: Fault | None) -> None:
    """Turn a 429/500/529 fault into its error response; other faults play out inside the stream."""
    if fault is Fault.RATE_LIMIT:
        raise rate_limited("Rate limit reached for requests (injected by the mock).", config.retry_after_s)
    if fault is Fault.SERVER_ERROR:
        raise server_error()
    if fault is Fault.OVERLOADED:
        raise overloaded()
