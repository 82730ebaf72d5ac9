"""The end-of-run report as types: what ``--ai-summary-json`` writes, key for key.

A leaf module (it imports nothing from the package but :mod:`_report_sections`, the types of the
sections that need no row): aggregation (``_summary``, ``_goodput``, ``_phases``,
``_timeseries``, ``_arrival``, ``_pricing``, ``_thresholds``, ``_distributed``, ``_outputs``) builds these
dicts, :func:`run_report` puts them together once, and the renderers (:mod:`locust_aiapi.render`) read
them and nothing else. Floats are unrounded; ``None`` means "undefined" (no sample, no window, no price).
"""

from __future__ import annotations

from typing import Literal, TypedDict, get_args

from ._report_sections import (
    ArrivalReport,
    ArrivalSettings,
    ClientLagReport,
    CostReport,
    Description,
    ModelCost,
    TimeSeriesFigures,
    TimeSeriesPoint,
    TimeSeriesReport,
    WorkersReport,
)

__all__ = [
    "HISTOGRAM_METRICS",
    "LATENCY_METRICS",
    "ArrivalReport",
    "ArrivalSettings",
    "ClientLagReport",
    "CostReport",
    "Description",
    "FailureDetailRow",
    "FailureMessage",
    "GoodputReport",
    "GoodputRow",
    "LatencyMetric",
    "ModelCost",
    "NameRow",
    "PhaseRow",
    "RequestedTokensReport",
    "ReportMeta",
    "ReportSections",
    "RunReport",
    "Statistic",
    "SummaryReport",
    "ThresholdResult",
    "TimeSeriesFigures",
    "TimeSeriesPoint",
    "TimeSeriesReport",
    "TurnRow",
    "WorkersReport",
    "WorkloadReport",
    "run_report",
]

LatencyMetric = Literal["ttft_ms", "ttfc_ms", "itl_ms", "tpot_ms", "e2e_ms", "output_tokens_per_s"]
LATENCY_METRICS: tuple[LatencyMetric, ...] = get_args(LatencyMetric)
"""The histograms fed from successful requests, named like the :mod:`_metrics` function that computes them."""

HistogramMetric = Literal[LatencyMetric, "first_attempt_e2e_ms", "client_lag_ms"]
HISTOGRAM_METRICS: tuple[HistogramMetric, ...] = (*LATENCY_METRICS, "first_attempt_e2e_ms", "client_lag_ms")
"""Every histogram of a row: the latency metrics, the first attempt's E2E of retried requests, and the
client lag of every kernel-stamped read (whatever the request's outcome: it measures the client)."""

Statistic = Literal["mean", "p50", "p90", "p95", "p99", "max", "min", "count"]


class FailureMessage(TypedDict):
    message: str  # redacted, cut at 200 characters
    count: int


class FailureDetailRow(TypedDict):
    """One failure kind's status codes ("none": no HTTP status) and most frequent messages."""

    status_codes: dict[str, int]
    messages: list[FailureMessage]  # the most frequent first, at most 5
    other_messages: int  # failures of the kind whose message is not listed


class NameRow(TypedDict):
    """Everything reported for one request name (or the total of all of them)."""

    count: int
    successes: int
    failures: int
    cancelled: int
    failures_by_kind: dict[str, int]
    failure_details: dict[str, FailureDetailRow]  # by kind: status codes and the few most frequent messages
    success_rate: float | None  # of completed requests (cancelled ones are neither)
    status_codes: dict[str, int]
    ttft_ms: Description
    ttfc_ms: Description
    itl_ms: Description
    tpot_ms: Description
    e2e_ms: Description
    output_tokens_per_s: Description
    first_attempt_e2e_ms: Description
    client_lag_ms: Description  # per kernel-stamped read: our stamp minus the kernel's
    kernel_stamped: int  # requests whose every read carried a kernel stamp
    first_token_shared_reads: int  # requests whose first token came in one read with another token
    prompt_tokens: int | None  # None: no request of the row reported it (unknown, not 0)
    prompt_tokens_unknown: int  # successful requests whose prompt tokens the server did not report
    cached_prompt_tokens: int  # of prompt_tokens, read from the server's prompt cache (0: none reported)
    cache_write_prompt_tokens: int  # of prompt_tokens, written to that cache (0: none reported)
    cache_write_1h_prompt_tokens: int  # of those writes, to the 1-hour cache (0: none reported)
    output_tokens: int
    output_tokens_by_source: dict[str, int]  # requests by source: "usage"; estimates: "counted", "tokenized"
    total_tokens: int
    success_output_tokens: int
    aggregate_output_tokens_per_s: float | None
    retries: int
    rate_limited: int
    first_start_epoch_s: float | None
    last_end_epoch_s: float | None


class SummaryReport(TypedDict):
    generated_at: str  # ISO 8601 with a time zone
    requests: dict[str, NameRow]  # sorted by name
    total: NameRow


class _ThresholdVerdict(TypedDict):
    threshold: str
    passed: bool
    measured: float | None
    error: str | None  # why it failed without a measurement ("no data", a parse error)


class ThresholdResult(_ThresholdVerdict, total=False):
    """A threshold that did not parse has only the verdict's keys."""

    name: str | None
    metric: str
    stat: str | None
    op: str
    limit: float


class GoodputRow(TypedDict):
    completed: int
    good: int
    goodput: float | None
    good_per_s: float | None
    completed_per_s: float | None


class GoodputReport(TypedDict):
    slo: dict[str, float]  # metric -> limit
    requests: dict[str, GoodputRow]
    total: GoodputRow


class _PhaseFacts(TypedDict):
    index: int
    label: str
    target_users: int
    spawn_rate: float
    planned_duration_s: float | None
    start_offset_s: float
    duration_s: float


class PhaseRow(_PhaseFacts, NameRow):
    """A phase of the load shape and the statistics of the requests that started in it."""


class _TurnFacts(TypedDict):
    turn: int  # 1, 2, 3 ... within a conversation


class TurnRow(_TurnFacts, NameRow):
    """The statistics of every request sent as turn ``turn`` of a conversation."""


class RequestedTokensReport(TypedDict):
    """What the workload asked for next to what the server reported, for the same requests."""

    prompt_requests: int
    requested_prompt_tokens: int
    reported_prompt_tokens: int
    output_requests: int
    requested_output_tokens: int
    output_tokens: int
    short_answers: int  # fewer output tokens than half of max_tokens
    short_answer_warning: str | None


class WorkloadReport(TypedDict):
    requested: RequestedTokensReport
    turns: list[TurnRow]  # empty without conversations


class ReportSections(TypedDict):
    """What is added to the summary at the end of a run."""

    thresholds: list[ThresholdResult]
    thresholds_passed: bool | None  # None without thresholds
    goodput: GoodputReport | None  # None without an SLO
    phases: list[PhaseRow]
    timeseries: TimeSeriesReport
    arrival: ArrivalReport | None  # None without the open model
    cost: CostReport
    workload: WorkloadReport


class RunReport(SummaryReport, ReportSections, total=False):
    """The whole report, as written to ``--ai-summary-json``; ``workers`` only on a master."""

    workers: WorkersReport
    client_lag: ClientLagReport
    listener_errors: dict[str, int]  # only when a listener of ours raised (it was caught)


class _RunFacts(TypedDict):
    host: str | None
    locustfile: str | None
    shape: str | None
    run: str | None
    workers: int | None


class ReportMeta(_RunFacts, total=False):
    """Facts about the run shown in the HTML report's header (None: not known), and its configuration."""

    config: dict[str, str]  # setting -> value, in the order shown (no secrets)


def run_report(
    summary: SummaryReport, sections: ReportSections, workers: WorkersReport | None = None
) -> RunReport:
    """The one place the report is assembled (keys in the order the JSON has always had)."""
    report: RunReport = {**summary, **sections}  # type: ignore[typeddict-item]  # optional keys left out
    if workers is not None:  # keep the key order the JSON has always had: workers before the sections
        report = {**summary, "workers": workers, **sections}  # type: ignore[typeddict-item]
    return report
