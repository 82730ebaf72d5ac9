"""Value types of the ``--ai-*`` options: text in, a checked value out, or one clear message.

Each is an argparse ``type=``: it raises ``argparse.ArgumentTypeError`` (argparse prints the message
and exits 2). :class:`~locust_aiapi._options.AIOptions` applies the same functions to values typed
in the web UI's form, which reach ``parsed_options`` as plain text.
"""

from __future__ import annotations

import argparse
import math

from ._distributions import parse_distribution
from ._shape_specs import checked, parse_duration_s, parse_spike, parse_stages, parse_steps
from ._thresholds import parse_thresholds

__all__ = [
    "distribution_text",
    "duration_text",
    "non_negative_int",
    "non_negative_seconds",
    "port",
    "positive_float",
    "positive_int",
    "prompt_order",
    "spike_text",
    "stages_text",
    "steps_text",
    "thresholds_text",
    "tokenizer_name",
]


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more, got 0")
    return value


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):  # inf and nan are typos, never a rate or a delay
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    value = _finite(text, "a number of seconds")
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _finite(text, "a number")
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def tokenizer_name(text: str) -> str:
    """``off`` or one of the tokenizer encodings (checked without loading the tokenizer)."""
    from ._tokenizer import ENCODINGS

    name = text.strip().lower()
    if name != "off" and name not in ENCODINGS:
        raise argparse.ArgumentTypeError(f"expected off or one of {', '.join(ENCODINGS)}, got {text!r}")
    return name


def prompt_order(text: str) -> str:
    value = text.strip().lower()
    if value not in ("sequential", "shuffle"):
        raise argparse.ArgumentTypeError(f"expected 'sequential' or 'shuffle', got {text!r}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {value}")
    return value


# Spec options keep their text (Locust ships parsed options to workers as msgpack); the shape or
# threshold that uses one parses it again where it is used.
thresholds_text = checked(parse_thresholds)
stages_text = checked(parse_stages)
steps_text = checked(parse_steps)
spike_text = checked(parse_spike)
duration_text = checked(parse_duration_s)
distribution_text = checked(parse_distribution)
