"""The report's section types that stand on their own (no per-name row): histogram descriptions,
the time series, the open model, cost, client lag, workers. Re-exported by :mod:`_report_types`,
which renderers import; a leaf module.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "ArrivalReport",
    "ArrivalSettings",
    "ClientLagReport",
    "CostReport",
    "Description",
    "ModelCost",
    "TimeSeriesFigures",
    "TimeSeriesPoint",
    "TimeSeriesReport",
    "WorkersReport",
]


class Description(TypedDict):
    """One histogram, described; every value None (count 0) without samples."""

    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    min: float | None
    count: int


class TimeSeriesFigures(TypedDict):
    """The requests that ended in one bucket (all of them, or those of one name); rates per covered second."""

    requests: int
    rps: float
    failures_by_kind: dict[str, int]
    output_tokens_per_s: float
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    e2e_p50_ms: float | None
    e2e_p95_ms: float | None
    itl_p50_ms: float | None
    itl_p95_ms: float | None


class _TimeSeriesFacts(TypedDict):
    epoch_s: float
    offset_s: float
    covered_s: float  # seconds of the bucket within the run's requests: less at the edges (rates use it)
    users: int | None


class TimeSeriesPoint(_TimeSeriesFacts, TimeSeriesFigures):
    """One bucket: the figures of every request, and ``by_name`` the same per request name (capped)."""

    by_name: dict[str, TimeSeriesFigures]


class TimeSeriesReport(TypedDict):
    interval_s: float
    points: list[TimeSeriesPoint]


class ArrivalSettings(TypedDict):
    rate_per_s: float
    poisson: bool
    max_delay_s: float


class _ArrivalCounts(TypedDict):
    issued: int
    started: int
    dropped: int
    dropped_rate: float | None
    start_delay_ms: Description


class ArrivalReport(_ArrivalCounts, total=False):
    """The open model's counts; the settings only when a rate is configured on this process."""

    rate_per_s: float
    poisson: bool
    max_delay_s: float


class ModelCost(TypedDict):
    prompt_tokens: int  # cached ones included
    cached_prompt_tokens: int  # priced at cached_input_usd_per_mtok
    cache_write_prompt_tokens: int  # priced at cache_write_input_usd_per_mtok
    cache_write_1h_prompt_tokens: int  # of those, priced at cache_write_1h_input_usd_per_mtok instead
    output_tokens: int
    input_usd_per_mtok: float | None
    cached_input_usd_per_mtok: float | None
    cache_write_input_usd_per_mtok: float | None
    cache_write_1h_input_usd_per_mtok: float | None
    output_usd_per_mtok: float | None
    cost_usd: float | None  # None: no price for this model


class CostReport(TypedDict):
    pricing: str
    models: dict[str, ModelCost]
    total_usd: float | None
    unpriced_models: list[str]


class ClientLagReport(TypedDict):
    """How late the load generator read what had arrived, and whether that makes the run client-bound.

    ``source`` says what ``p99_ms`` measures: "kernel" (user-space minus kernel receive stamps of reads),
    "loop_probe" (a periodic timer's overshoot, where no read carried a kernel stamp), None: neither.
    """

    source: Literal["kernel", "loop_probe"] | None
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    client_lag_ms: Description
    loop_lag_ms: Description
    max_client_lag_ms: float  # --ai-max-client-lag-ms
    client_bound: bool
    advice: str | None
    by_worker: dict[str, Description]  # client lag per worker (master only; empty otherwise)


class WorkersReport(TypedDict):
    reported: int
    lost: int
    lost_ids: list[str]
    missing_s: dict[str, float]  # seconds each worker was missing (lost or back again)
    requests_by_worker: dict[str, int]
    rejected_reports: int
