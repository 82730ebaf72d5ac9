"""Token-length distributions: ``512``, ``uniform:100-1000``, ``normal:512,128``, ``lognormal:6.2,0.5``,
``choice:128,512,2048``.

A :class:`Distribution` is parsed once from text (a :class:`ValueError` names what is wrong) and sampled
with a caller's :class:`random.Random`, so a seed makes a run reproducible. Every sample is a whole
number of tokens, at least 1 (a normal's negative tail is clipped, not redrawn, so its mean shifts a
little when ``mean < 3 * sd``: documented, and the reason to prefer ``lognormal`` for long tails).
``lognormal:MU,SIGMA`` takes the parameters of the underlying normal (``exp(MU)`` is the median), like
:func:`random.lognormvariate`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Distribution", "parse_distribution"]

_KINDS = ("fixed", "uniform", "normal", "lognormal", "choice")
MAX_TOKENS = 1_000_000  # a bound on what a typo can ask for


@dataclass(frozen=True, slots=True)
class Distribution:
    """A parsed spec: ``kind`` and its parameters (``values`` for fixed and choice)."""

    kind: str
    a: float = 0.0
    b: float = 0.0
    values: tuple[int, ...] = ()

    def sample(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "choice":
            return rng.choice(self.values)
        if self.kind == "uniform":
            value = float(rng.randint(int(self.a), int(self.b)))
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        else:
            value = rng.lognormvariate(self.a, self.b)
        return max(1, min(MAX_TOKENS, round(value)))

    @property
    def mean(self) -> float:
        """The mean of the distribution as specified (before rounding and clipping)."""
        if self.kind in ("fixed", "choice"):
            return sum(self.values) / len(self.values)
        if self.kind == "uniform":
            return (self.a + self.b) / 2.0
        if self.kind == "normal":
            return self.a
        return math.exp(self.a + self.b * self.b / 2.0)


def parse_distribution(text: str) -> Distribution:
    """``Distribution`` for a spec; raises ValueError saying what is wrong and what is expected."""
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if not sep:
        return Distribution("fixed", values=(_tokens(text),))
    kind = kind.strip().lower()
    if kind == "uniform":
        low, dash, high = rest.partition("-")
        if not dash:
            raise ValueError(f"uniform needs LOW-HIGH, e.g. uniform:100-1000, got {text!r}")
        a, b = _tokens(low), _tokens(high)
        if a > b:
            raise ValueError(f"uniform:{a}-{b}: LOW must not exceed HIGH")
        return Distribution("uniform", float(a), float(b))
    if kind in ("normal", "lognormal"):
        return _two_parameters(kind, rest, text)
    if kind == "choice":
        values = tuple(_tokens(part) for part in rest.split(","))
        return Distribution("choice", values=values)
    kinds = ", ".join(_KINDS[1:])
    raise ValueError(f"unknown distribution {kind!r} in {text!r}: use a number or one of {kinds}")


def _two_parameters(kind: str, rest: str, text: str) -> Distribution:
    parts = rest.split(",")
    example = "normal:512,128" if kind == "normal" else "lognormal:6.2,0.5"
    if len(parts) != 2:
        raise ValueError(f"{kind} needs two numbers, e.g. {example}, got {text!r}")
    try:
        a, b = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"{kind} needs two numbers, e.g. {example}, got {text!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or b < 0.0:
        raise ValueError(f"{text!r}: the parameters must be finite and the spread 0 or more")
    if kind == "normal" and a <= 0.0:
        raise ValueError(f"{text!r}: the mean must be more than 0")
    if kind == "lognormal" and a > math.log(MAX_TOKENS):
        raise ValueError(f"{text!r}: the median exp({a}) is beyond {MAX_TOKENS} tokens")
    return Distribution(kind, a, b)


def _tokens(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"expected a whole number of tokens, got {text.strip()!r}") from None
    if not 1 <= value <= MAX_TOKENS:
        raise ValueError(f"a token count must be from 1 to {MAX_TOKENS}, got {value}")
    return value
