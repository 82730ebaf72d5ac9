"""Pass/fail thresholds on the run's LLM metrics, k6 style, evaluated at the end of the run.

Grammar (whitespace around the operator is allowed)::

    threshold := [NAME ":"] METRIC [":" STAT] OP NUMBER ["%"]
    OP        := "<" | "<=" | ">" | ">="
    STAT      := "mean" | "avg" | "min" | "max" | "med" | "pNN" | "pNN.N" | "p(NN)"

Latency metrics take a statistic over successful requests: ``ttft_ms``, ``ttfc_ms``, ``itl_ms``,
``tpot_ms``, ``e2e_ms`` and ``output_tokens_per_s`` (each request's decode rate); ``client_lag_ms`` takes
one over every kernel-stamped read (how late the load generator read, e.g. ``client_lag_ms:p99<5``). Run
metrics take
none: ``error_rate`` and ``success_rate`` (of completed requests), ``goodput`` (share that met every
SLO), ``output_tokens_per_s`` without a statistic (aggregate throughput), ``rps``, ``requests``,
``failures``, and for the open model ``dropped`` and ``dropped_rate`` (whole run only). ``NAME``
limits a threshold to one request name (it may itself contain ``:``). ``5%`` is ``0.05``.
Examples: ``ttft_ms:p95<3000``, ``chat:e2e_ms:p(99)<5000``, ``error_rate<5%``,
``output_tokens_per_s>200``. A threshold without data (no request of that name, no sample) fails.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._name_stats import NameStats
from ._report_types import LATENCY_METRICS, ArrivalReport, GoodputReport, ThresholdResult

__all__ = ["Threshold", "evaluate", "parse_threshold", "parse_thresholds", "split_thresholds"]

STAT_METRICS = (*LATENCY_METRICS, "client_lag_ms")
"""The metrics that take a statistic (a histogram of each row)."""

RUN_METRICS = (
    "error_rate",
    "success_rate",
    "goodput",
    "output_tokens_per_s",
    "aggregate_output_tokens_per_s",
    "rps",
    "requests",
    "failures",
    "dropped",
    "dropped_rate",
)
_WHOLE_RUN_ONLY = ("dropped", "dropped_rate")
RATIOS = ("error_rate", "success_rate", "goodput", "dropped_rate")
"""Metrics that are ratios from 0 to 1 (a limit may be written as a percentage: ``error_rate<5%``)."""
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SHAPE = re.compile(r"^(?P<left>[^<>=]+?)\s*(?P<op><=|>=|<|>)\s*(?P<value>[^<>=]+)$")
_PERCENTILE = re.compile(r"^p(?:\((\d+(?:\.\d+)?)\)|(\d+(?:\.\d+)?))$")
_STAT_ALIASES = {"mean": "mean", "avg": "mean", "min": "min", "max": "max", "med": "p50"}


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    name: str | None
    metric: str
    stat: str | None  # "mean", "min", "max" or "pNN"; None for run metrics
    op: str
    limit: float

    def passes(self, measured: float) -> bool:
        return _OPS[self.op](measured, self.limit)


def split_thresholds(values: str | Iterable[str] | None) -> list[str]:
    """Option values -> one string per threshold (a value may hold several, separated by , or ;)."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [part.strip() for item in items for part in re.split(r"[;,]", str(item)) if part.strip()]


def _stat(text: str) -> str | None:
    lowered = text.strip().lower()
    if lowered in _STAT_ALIASES:
        return _STAT_ALIASES[lowered]
    match = _PERCENTILE.match(lowered)
    if match is None:
        return None
    value = float(match.group(1) or match.group(2))
    return f"p{value:g}" if 0.0 < value <= 100.0 else None


def _limit(text: str, threshold: str) -> float:
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError:
        raise ValueError(f"threshold {threshold!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"threshold {threshold!r}: the limit must be a finite number")
    return value / 100.0 if percent else value


def parse_threshold(text: str) -> Threshold:
    """Parse one threshold; raises ValueError naming the problem."""
    match = _SHAPE.match(text.strip())
    if match is None:
        raise ValueError(
            f"threshold {text!r}: expected [NAME:]METRIC[:STAT] OP NUMBER, like ttft_ms:p95<3000"
        )
    parts = [part.strip() for part in match["left"].split(":")]
    name, metric, stat = _split_left(parts, text)
    if name is not None and metric in _WHOLE_RUN_ONLY:
        raise ValueError(f"threshold {text!r}: {metric} is for the whole run, not per request name")
    limit = _limit(match["value"], text)
    if metric in RATIOS and not 0.0 <= limit <= 1.0:  # error_rate<=5 would pass at 100 % errors
        raise ValueError(
            f"threshold {text!r}: {metric} is a ratio from 0 to 1: write {metric}{match['op']}"
            f"{limit / 100:g} or {metric}{match['op']}{limit:g}%"
        )
    return Threshold(text.strip(), name, metric, stat, match["op"], limit)


def parse_thresholds(text: str) -> list[Threshold]:
    """Every threshold in one option value (``,`` or ``;`` separate several); raises ValueError."""
    texts = split_thresholds(text)
    if not texts:
        raise ValueError("empty threshold: expected [NAME:]METRIC[:STAT] OP NUMBER, like ttft_ms:p95<3000")
    return [parse_threshold(one) for one in texts]


def _split_left(parts: list[str], text: str) -> tuple[str | None, str, str | None]:
    if parts[-1] in RUN_METRICS:
        metric = "output_tokens_per_s" if parts[-1] == "aggregate_output_tokens_per_s" else parts[-1]
        return _name(parts[:-1], text), metric, None
    if parts[-1] in STAT_METRICS:
        raise ValueError(f"threshold {text!r}: {parts[-1]} needs a statistic, like {parts[-1]}:p95")
    stat = _stat(parts[-1])
    if stat is None or len(parts) < 2:
        known = ", ".join(dict.fromkeys((*STAT_METRICS, *RUN_METRICS)))
        raise ValueError(f"threshold {text!r}: unknown metric {parts[-1]!r} (known: {known})")
    if parts[-2] not in STAT_METRICS:
        raise ValueError(
            f"threshold {text!r}: a statistic applies to {', '.join(STAT_METRICS)}, not {parts[-2]!r}"
        )
    return _name(parts[:-2], text), parts[-2], stat


def _name(parts: list[str], text: str) -> str | None:
    if not parts:
        return None
    name = ":".join(parts)
    if not name:
        raise ValueError(f"threshold {text!r}: empty request name")
    return name


@dataclass(frozen=True, slots=True)
class Context:
    """What thresholds are measured against."""

    rows: Mapping[str, NameStats]  # per request name
    total: NameStats
    goodput: GoodputReport | None  # None without an SLO
    arrival: ArrivalReport | None  # None without the open model


def evaluate(texts: Iterable[str], context: Context) -> list[ThresholdResult]:
    """One result per threshold: measured value, pass/fail; a malformed one fails with its error."""
    results: list[ThresholdResult] = []
    for text in texts:
        try:
            threshold = parse_threshold(text)
        except ValueError as exc:
            results.append({"threshold": text, "passed": False, "measured": None, "error": str(exc)})
            continue
        measured = _measure(threshold, context)
        results.append(
            {
                "threshold": threshold.text,
                "name": threshold.name,
                "metric": threshold.metric,
                "stat": threshold.stat,
                "op": threshold.op,
                "limit": threshold.limit,
                "measured": measured,
                "passed": measured is not None and threshold.passes(measured),
                "error": None if measured is not None else "no data",
            }
        )
    return results


def _measure(threshold: Threshold, context: Context) -> float | None:
    if threshold.metric in _WHOLE_RUN_ONLY:
        return _arrival_metric(threshold.metric, context.arrival)
    stats = context.total if threshold.name is None else context.rows.get(threshold.name)
    if stats is None:
        return None
    if threshold.stat is not None:
        return _statistic(getattr(stats, threshold.metric), threshold.stat)
    return _run_metric(threshold, stats, context)


def _statistic(histogram: Any, stat: str) -> float | None:
    if stat == "mean":
        return histogram.mean  # type: ignore[no-any-return]
    if stat in ("min", "max"):
        return getattr(histogram, stat)  # type: ignore[no-any-return]
    return histogram.quantile(float(stat[1:]) / 100.0)  # type: ignore[no-any-return]


def _run_metric(threshold: Threshold, stats: NameStats, context: Context) -> float | None:
    completed = stats.requests - stats.cancelled
    window = stats.window_s
    values: dict[str, float | None] = {
        "error_rate": stats.failures / completed if completed else None,
        "success_rate": stats.success_rate,
        "output_tokens_per_s": stats.aggregate_output_tokens_per_s,
        "rps": completed / window if window else None,
        "requests": float(stats.requests),
        "failures": float(stats.failures),
        "goodput": _goodput(threshold.name, context.goodput),
    }
    return values[threshold.metric]


def _arrival_metric(metric: str, report: ArrivalReport | None) -> float | None:
    if report is None:
        return None
    value = report["dropped"] if metric == "dropped" else report["dropped_rate"]
    return None if value is None else float(value)


def _goodput(name: str | None, report: GoodputReport | None) -> float | None:
    if report is None:
        return None
    row = report["total"] if name is None else report["requests"].get(name)
    return None if row is None else row["goodput"]
