"""Parsers for the load-shape options: durations, k6-style stages, step lists, a spike.

They take the text a person types on the command line and return plain values, or raise
``ValueError`` with a message that names what is wrong. Options keep the text itself (Locust
ships parsed options to workers as msgpack), so these run again wherever a value is used.

- duration: ``90`` (seconds), ``90s``, ``1.5s``, ``250ms``, ``2m``, ``1h30m``
- stages:   ``2m:300,5m:300,2m:0`` — ramp linearly to each target over its duration (k6 ``ramping-vus``)
- steps:    ``50,100,200`` — concurrency levels, each held for the step duration
- spike:    ``base=50,peak=500,before=30s,hold=1m,after=30s,rate=500`` (any order; base and peak required)
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SpikeSpec", "checked", "parse_duration_s", "parse_spike", "parse_stages", "parse_steps"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_MAX_USERS = 1_000_000


def parse_duration_s(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``1.5s``, ``250ms``, ``2m`` or ``1h30m``; must be more than 0."""
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        seconds = _sum_parts(cleaned, text)
    if not (math.isfinite(seconds) and seconds > 0.0):
        raise ValueError(f"a duration must be more than 0 seconds, got {text!r}")
    return seconds


def _sum_parts(cleaned: str, original: str) -> float:
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(number + unit for number, unit in parts) != cleaned:
        raise ValueError(f"not a duration: {original!r} (examples: 90, 90s, 1.5s, 250ms, 2m, 1h30m)")
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def _users(text: str, what: str) -> int:
    try:
        users = int(text.strip())
    except ValueError:
        raise ValueError(f"{what} must be a whole number of users, got {text.strip()!r}") from None
    if not 0 <= users <= _MAX_USERS:
        raise ValueError(f"{what} must be from 0 to {_MAX_USERS}, got {users}")
    return users


def _items(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ValueError(f"{what}: expected a comma-separated list, got {text!r}")
    return items


def parse_stages(text: str) -> tuple[tuple[float, int], ...]:
    """``2m:300,5m:300,2m:0`` -> ((120.0, 300), (300.0, 300), (120.0, 0)): (duration_s, target users)."""
    stages = []
    for item in _items(text, "stages"):
        duration, sep, target = item.partition(":")
        if not sep:
            raise ValueError(f"stage {item!r}: expected DURATION:USERS, like 2m:300")
        stages.append((parse_duration_s(duration), _users(target, f"stage {item!r}: target")))
    return tuple(stages)


def parse_steps(text: str) -> tuple[int, ...]:
    """``50,100,200`` -> (50, 100, 200); each step needs at least one user."""
    steps = tuple(_users(item, "a step") for item in _items(text, "steps"))
    if any(step == 0 for step in steps):
        raise ValueError(f"every step needs at least 1 user, got {text!r}")
    return steps


@dataclass(frozen=True, slots=True)
class SpikeSpec:
    """``base`` users for ``before_s``, a jump to ``peak`` held ``hold_s``, ``base`` again for ``after_s``."""

    base: int
    peak: int
    before_s: float = 30.0
    hold_s: float = 60.0
    after_s: float = 30.0
    rate: float | None = None  # users started (or stopped) per second in the jump; None: within 1 s


_SPIKE_KEYS = ("base", "peak", "before", "hold", "after", "rate")


def parse_spike(text: str) -> SpikeSpec:
    """``base=50,peak=500,before=30s,hold=1m,after=30s,rate=500`` (base and peak are required)."""
    values: dict[str, str] = {}
    for item in _items(text, "spike"):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in _SPIKE_KEYS:
            raise ValueError(f"spike: {item!r} is not one of {', '.join(k + '=...' for k in _SPIKE_KEYS)}")
        values[key] = value
    if "base" not in values or "peak" not in values:
        raise ValueError(f"spike: base= and peak= are required, got {text!r}")
    spec = SpikeSpec(
        base=_users(values["base"], "spike base"),
        peak=_users(values["peak"], "spike peak"),
        before_s=parse_duration_s(values.get("before", "30s")),
        hold_s=parse_duration_s(values.get("hold", "60s")),
        after_s=parse_duration_s(values.get("after", "30s")),
        rate=_rate(values["rate"]) if "rate" in values else None,
    )
    if spec.peak <= spec.base:
        raise ValueError(f"spike: peak ({spec.peak}) must be above base ({spec.base})")
    return spec


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"spike rate must be users per second, got {text!r}") from None
    if not (math.isfinite(rate) and rate > 0.0):
        raise ValueError(f"spike rate must be more than 0, got {text!r}")
    return rate


def checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse ``type=`` that validates with ``parse`` and keeps the text (msgpack-able for workers)."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = getattr(parse, "__name__", "value")
    return check
