"""One row of the summary: everything aggregated for one request name (and model).

Failures are counted (``requests``, ``failures_by_kind``, tokens, retries) but never folded into the latency
and rate histograms: a request that timed out after 60 s is not a 60 s latency sample. The histograms take
only successful requests, and only the metrics that are defined for them (see :mod:`locust_aiapi._metrics`).
``to_dict``/``from_dict`` carry the full mergeable state (workers -> master); ``report_row`` is the
human/CI-facing row (typed in :mod:`_report_types`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _metrics
from ._failure_detail import FailureDetail
from ._histogram import LogHistogram
from ._records import FailureKind, Outcome, RequestRecord, StampSource, TokenSource
from ._report_types import HISTOGRAM_METRICS, Description, NameRow

__all__ = ["NameStats", "describe", "widen_window"]

_HISTOGRAMS = HISTOGRAM_METRICS
_DICTS = ("failures_by_kind", "status_codes", "output_token_sources")
_COUNTERS = (
    "requests",
    "successes",
    "cancelled",
    "prompt_tokens",
    "prompt_tokens_reported",
    "cached_prompt_tokens",
    "cache_write_prompt_tokens",
    "cache_write_1h_prompt_tokens",
    "output_tokens",
    "success_output_tokens",
    "retries",
    "rate_limited",
    "kernel_stamped",
    "first_token_shared_reads",
)
_QUANTILES = (0.5, 0.9, 0.95, 0.99)  # p50, p90, p95, p99
_WINDOW = ("first_start_epoch_s", "last_end_epoch_s")
_UNKNOWN_KIND = "unknown"


def _observe(histogram: LogHistogram, value: float | None) -> None:
    # a negative span means a clock went wrong; a listener must not raise, so the sample is dropped
    if value is not None and value >= 0.0:
        histogram.add(value)


def _add_counts(target: dict[str, int], source: Mapping[str, int]) -> None:
    for key, n in source.items():
        target[key] = target.get(key, 0) + n


def widen_window(
    window: tuple[float | None, float | None], first_s: float | None, last_s: float | None
) -> tuple[float | None, float | None]:
    """``(first, last)`` widened to take in ``first_s`` and ``last_s`` (None: nothing known yet)."""
    first, last = window
    if first_s is not None and (first is None or first_s < first):
        first = first_s
    if last_s is not None and (last is None or last_s > last):
        last = last_s
    return first, last


def describe(histogram: LogHistogram) -> Description:
    """Mean, p50, p90, p95, p99, max, min and count, unrounded; None (count 0) without samples."""
    p50, p90, p95, p99 = histogram.quantiles(_QUANTILES)
    return {
        "mean": histogram.mean,
        "p50": p50,
        "p90": p90,
        "p95": p95,
        "p99": p99,
        "max": histogram.max,
        "min": histogram.min,
        "count": histogram.count,
    }


@dataclass(slots=True)
class NameStats:
    """Everything aggregated for one request name.

    ``prompt_tokens``/``output_tokens`` sum every request that reported them, failed ones included;
    ``success_output_tokens`` only successful ones. ``rate_limited`` counts requests whose final outcome
    was a 429 (a retried request that finally succeeded is not counted; see ``retries``).
    ``first_attempt_e2e_ms`` holds the first attempt's E2E of every retried request, whatever its outcome.
    """

    requests: int = 0
    successes: int = 0
    cancelled: int = 0
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    status_codes: dict[str, int] = field(default_factory=dict)
    ttft_ms: LogHistogram = field(default_factory=LogHistogram)
    ttfc_ms: LogHistogram = field(default_factory=LogHistogram)
    itl_ms: LogHistogram = field(default_factory=LogHistogram)
    tpot_ms: LogHistogram = field(default_factory=LogHistogram)
    e2e_ms: LogHistogram = field(default_factory=LogHistogram)
    output_tokens_per_s: LogHistogram = field(default_factory=LogHistogram)
    first_attempt_e2e_ms: LogHistogram = field(default_factory=LogHistogram)
    client_lag_ms: LogHistogram = field(default_factory=LogHistogram)  # every kernel-stamped read
    prompt_tokens: int = 0
    prompt_tokens_reported: int = 0  # successful requests whose prompt tokens the server reported
    cached_prompt_tokens: int = 0  # of prompt_tokens, those the server said came from its prompt cache
    cache_write_prompt_tokens: int = 0  # of prompt_tokens, those the server said it wrote to that cache
    cache_write_1h_prompt_tokens: int = 0  # of those writes, the ones to its 1-hour cache
    output_tokens: int = 0
    # successful requests by where their output tokens came from: "usage", or estimated ("counted",
    # "tokenized")
    output_token_sources: dict[str, int] = field(default_factory=dict)
    success_output_tokens: int = 0
    retries: int = 0
    rate_limited: int = 0
    kernel_stamped: int = 0
    first_token_shared_reads: int = 0
    first_start_epoch_s: float | None = None
    last_end_epoch_s: float | None = None
    failure_detail: FailureDetail = field(default_factory=FailureDetail)

    def add(self, record: RequestRecord, metrics: _metrics.RecordMetrics | None = None) -> None:
        """One final record; ``metrics``: its metrics when already derived (``RunState.record``)."""
        if metrics is None:
            metrics = _metrics.RecordMetrics.of(record)
        self.requests += 1
        self.retries += max(0, record.attempts - 1)
        self._add_tokens(record)
        if record.outcome is not Outcome.CANCELLED:  # the stop's cut would stretch the window, tokens not
            self._extend_window(record.start_epoch_s, metrics.end_epoch_s)
        if record.status_code is not None:
            code = str(record.status_code)
            self.status_codes[code] = self.status_codes.get(code, 0) + 1
        _observe(self.first_attempt_e2e_ms, record.first_attempt_e2e_ms)
        self._add_stamps(record)
        if record.ok:
            self._add_success(metrics)
        elif record.outcome is Outcome.CANCELLED:
            self.cancelled += 1
        else:
            self._add_failure(record)
        if not record.ok and (record.status_code == 429 or record.failure_kind is FailureKind.RATE_LIMITED):
            self.rate_limited += 1  # a 429 whose back-off the end of the test cut short too

    def _add_tokens(self, record: RequestRecord) -> None:
        if record.prompt_tokens is not None:
            self.prompt_tokens += record.prompt_tokens
            self.prompt_tokens_reported += record.ok
            self.cached_prompt_tokens += record.cached_prompt_tokens or 0
            self.cache_write_prompt_tokens += record.cache_write_prompt_tokens or 0
            self.cache_write_1h_prompt_tokens += record.cache_write_1h_prompt_tokens or 0
        if record.output_tokens is not None:
            self.output_tokens += record.output_tokens
            if record.ok:  # where a complete answer's tokens came from (a cut-short stream has no usage)
                self.success_output_tokens += record.output_tokens
                source = (record.output_tokens_source or TokenSource.USAGE).value
                self.output_token_sources[source] = self.output_token_sources.get(source, 0) + 1

    def _add_stamps(self, record: RequestRecord) -> None:
        # ms, never negative: a kernel stamp is clamped to the read's own
        self.client_lag_ms.add_all(record.client_lags_s, 1000.0)
        self.kernel_stamped += record.timestamps is StampSource.KERNEL
        self.first_token_shared_reads += record.first_token_shared_read

    def _extend_window(self, first_s: float | None, last_s: float | None) -> None:
        self.first_start_epoch_s, self.last_end_epoch_s = widen_window(
            (self.first_start_epoch_s, self.last_end_epoch_s), first_s, last_s
        )

    def _add_success(self, metrics: _metrics.RecordMetrics) -> None:
        self.successes += 1
        _observe(self.ttft_ms, metrics.ttft_ms)
        _observe(self.ttfc_ms, metrics.ttfc_ms)
        _observe(self.itl_ms, metrics.itl_ms)
        _observe(self.tpot_ms, metrics.tpot_ms)
        _observe(self.e2e_ms, metrics.e2e_ms)
        _observe(self.output_tokens_per_s, metrics.output_tokens_per_s)

    def _add_failure(self, record: RequestRecord) -> None:
        kind = record.failure_kind.value if record.failure_kind is not None else _UNKNOWN_KIND
        self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + 1
        self.failure_detail.add(kind, record.status_code, record.failure_message)

    @property
    def _prompt_tokens_known(self) -> bool:
        return bool(self.prompt_tokens or self.prompt_tokens_reported)

    @property
    def failures(self) -> int:
        return self.requests - self.successes - self.cancelled

    @property
    def success_rate(self) -> float | None:
        """Successes among the requests that completed (cancelled ones are neither)."""
        completed = self.requests - self.cancelled
        return self.successes / completed if completed else None

    @property
    def window_s(self) -> float | None:
        """Wall-clock span from the first request's start to the last request's end."""
        if self.first_start_epoch_s is None or self.last_end_epoch_s is None:
            return None
        return self.last_end_epoch_s - self.first_start_epoch_s

    @property
    def aggregate_output_tokens_per_s(self) -> float | None:
        """Output tokens of successful requests per second of the wall-clock window; None for a 0 s window."""
        window = self.window_s
        return self.success_output_tokens / window if window else None

    def merge(self, other: NameStats) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in _DICTS:
            _add_counts(getattr(self, name), getattr(other, name))
        for name in _HISTOGRAMS:
            getattr(self, name).merge(getattr(other, name))
        self.failure_detail.merge(other.failure_detail)
        self._extend_window(other.first_start_epoch_s, other.last_end_epoch_s)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in (*_COUNTERS, *_WINDOW)}
        data.update((name, dict(getattr(self, name))) for name in _DICTS)
        data["histograms"] = {name: getattr(self, name).to_dict() for name in _HISTOGRAMS}
        data["failure_detail"] = self.failure_detail.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NameStats:
        stats = cls()
        try:
            for name in (*_COUNTERS, *_WINDOW):
                setattr(stats, name, data[name])
            for name in _DICTS:
                setattr(stats, name, {str(key): int(n) for key, n in data[name].items()})
            for name in _HISTOGRAMS:
                setattr(stats, name, LogHistogram.from_dict(data["histograms"][name]))
            stats.failure_detail = FailureDetail.from_dict(data.get("failure_detail", {}))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a NameStats dict: {exc!r}") from exc
        return stats

    def report_row(self) -> NameRow:
        """The human/CI-facing summary of this row (unrounded floats, None where undefined)."""
        return {
            "count": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "cancelled": self.cancelled,
            "failures_by_kind": dict(sorted(self.failures_by_kind.items())),
            "failure_details": self.failure_detail.report(),
            "success_rate": self.success_rate,
            "status_codes": dict(sorted(self.status_codes.items())),
            "ttft_ms": describe(self.ttft_ms),
            "ttfc_ms": describe(self.ttfc_ms),
            "itl_ms": describe(self.itl_ms),
            "tpot_ms": describe(self.tpot_ms),
            "e2e_ms": describe(self.e2e_ms),
            "output_tokens_per_s": describe(self.output_tokens_per_s),
            "first_attempt_e2e_ms": describe(self.first_attempt_e2e_ms),
            "client_lag_ms": describe(self.client_lag_ms),
            "kernel_stamped": self.kernel_stamped,
            "first_token_shared_reads": self.first_token_shared_reads,
            "prompt_tokens": self.prompt_tokens if self._prompt_tokens_known else None,
            "prompt_tokens_unknown": self.successes - self.prompt_tokens_reported,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "cache_write_prompt_tokens": self.cache_write_prompt_tokens,
            "cache_write_1h_prompt_tokens": self.cache_write_1h_prompt_tokens,
            "output_tokens": self.output_tokens,
            "output_tokens_by_source": dict(sorted(self.output_token_sources.items())),
            "total_tokens": self.prompt_tokens + self.output_tokens,
            "success_output_tokens": self.success_output_tokens,
            "aggregate_output_tokens_per_s": self.aggregate_output_tokens_per_s,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "first_start_epoch_s": self.first_start_epoch_s,
            "last_end_epoch_s": self.last_end_epoch_s,
        }
