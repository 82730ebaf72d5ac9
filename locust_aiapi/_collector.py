"""The Prometheus collector: metric families built at scrape time from state that already exists.

One source of truth (STYLE.md, point 6): nothing here counts anything. Each scrape reads the LLM summary
(on a master: the workers' merged summary) and Locust's ``runner.stats`` and turns them into metric
families, so the exporter can never disagree with the JSON summary or Locust's own tables.

Latency histograms. Our :class:`~locust_aiapi._histogram.LogHistogram` buckets are far finer than
Prometheus needs, so each of them is poured into fixed Prometheus buckets: a log bucket's samples count
in the first boundary at or above its representative value (within 0.5 % of every sample in it), and
zero-valued samples in the first boundary. ``_count`` and ``_sum`` are the histogram's own, exact.

Label cap. At most ``max_label_values`` distinct ``name`` values (shared by the AI metrics and Locust's
per-name metrics) and as many ``model`` values are exported. Values are admitted by first appearance
(names first seen in the same scrape in sorted order); once admitted a value keeps its own series, and
every value seen after the cap is full is merged into ``"other"``, so no series ever changes meaning.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import accumulate
from typing import Any, TypeVar

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ._histogram import LogHistogram
from ._summary import LLMSummary, NameStats

__all__ = [
    "CLIENT_LAG_BOUNDARIES_MS",
    "DEFAULT_MAX_LABEL_VALUES",
    "LATENCY_BOUNDARIES_MS",
    "OTHER",
    "TOKEN_GAP_BOUNDARIES_MS",
    "AICollector",
    "LabelCap",
    "prometheus_buckets",
]

log = logging.getLogger("locust_aiapi")

LATENCY_BOUNDARIES_MS: tuple[float, ...] = (
    5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500,
    10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 300_000,
)  # fmt: skip
"""Upper bounds (ms) of the TTFT, time-to-first-content and E2E buckets: 5 ms to 5 min, then +Inf."""

TOKEN_GAP_BOUNDARIES_MS: tuple[float, ...] = (
    1, 2.5, 5, 7.5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1_000, 2_000,
)  # fmt: skip
"""Upper bounds (ms) of the ITL and TPOT buckets: 1 ms to 2 s, then +Inf."""

CLIENT_LAG_BOUNDARIES_MS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1_000)
"""Upper bounds (ms) of the client lag buckets: 0.1 ms to 1 s, then +Inf (5 ms: the default limit)."""

DEFAULT_MAX_LABEL_VALUES = 100
OTHER = "other"
RUN_STATES = ("ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing")
LOCUST_QUANTILES = (0.5, 0.9, 0.95, 0.99)

_LATENCY, _GAP = LATENCY_BOUNDARIES_MS, TOKEN_GAP_BOUNDARIES_MS
_HISTOGRAMS = (  # metric, NameStats attribute, bucket boundaries, help (successful requests; lag: every read)
    ("locust_aiapi_ttft_seconds", "ttft_ms", _LATENCY, "Time to first token."),
    ("locust_aiapi_ttfc_seconds", "ttfc_ms", _LATENCY, "Time to first content token (reasoning excluded)."),
    ("locust_aiapi_itl_seconds", "itl_ms", _GAP, "Inter-token latency, one sample per request."),
    ("locust_aiapi_tpot_seconds", "tpot_ms", _GAP, "Time per output token after the first."),
    ("locust_aiapi_e2e_seconds", "e2e_ms", _LATENCY, "Request start to the end of the response body."),
    ("locust_aiapi_client_lag_seconds", "client_lag_ms", CLIENT_LAG_BOUNDARIES_MS,
     "Per kernel-stamped read: how long received bytes waited to be read."),
)  # fmt: skip
_COUNTERS = (  # metric, NameStats attribute, help
    ("locust_aiapi_rate_limited_total", "rate_limited", "Requests whose final answer was HTTP 429."),
    ("locust_aiapi_retries_total", "retries", "Retries after 429, 5xx or connection errors."),
    ("locust_aiapi_prompt_tokens_total", "prompt_tokens", "Prompt tokens reported by the server."),
    ("locust_aiapi_output_tokens_total", "output_tokens", "Output tokens, failed requests included."),
)
_NAME_MODEL = ("name", "model")
_METHOD_NAME = ("method", "name")

Row = tuple[tuple[str, str], NameStats]
_T = TypeVar("_T")
_go_float: Callable[[float], str] = floatToGoString  # how client_python writes "le" and "quantile"


def prometheus_buckets(histogram: LogHistogram, boundaries_ms: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs in seconds, ending with ``+Inf`` (= ``histogram.count``)."""
    boundaries_ms = tuple(boundaries_ms)
    counts = [0] * (len(boundaries_ms) + 1)
    counts[0] = histogram.zero_count
    slots = _slot_tables.setdefault((histogram.relative_accuracy, boundaries_ms), {})
    for index, n in histogram.bucket_counts().items():
        slot = slots.get(index)
        if slot is None:
            slot = slots[index] = _slot(histogram.relative_accuracy, boundaries_ms, index)
        counts[slot] += n
    return list(zip(_le_labels(boundaries_ms), accumulate(counts), strict=True))


# A scrape converts every log bucket of every histogram: remember where each bucket index goes.
_slot_tables: dict[tuple[float, tuple[float, ...]], dict[int, int]] = {}


def _slot(accuracy: float, boundaries_ms: tuple[float, ...], index: int) -> int:
    gamma = (1.0 + accuracy) / (1.0 - accuracy)  # the histogram's own bucket ratio
    return bisect_left(boundaries_ms, 2.0 * gamma**index / (gamma + 1.0))


@lru_cache(maxsize=8)
def _le_labels(boundaries_ms: tuple[float, ...]) -> tuple[str, ...]:
    return (*(_go_float(bound / 1000.0) for bound in boundaries_ms), "+Inf")


class LabelCap:
    """Admits at most ``limit`` distinct label values, by first appearance; the rest read as ``"other"``."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a label cap must admit at least one value, got {limit}")
        self.limit = limit
        self._admitted: set[str] = set()

    def admit(self, values: Iterable[str]) -> None:
        for value in sorted(set(values) - self._admitted):
            if len(self._admitted) >= self.limit:
                return
            self._admitted.add(value)

    def __call__(self, value: str) -> str:
        return value if value in self._admitted else OTHER


def _grouped(items: Iterable[tuple[tuple[str, str], _T]]) -> list[tuple[tuple[str, str], list[_T]]]:
    groups: dict[tuple[str, str], list[_T]] = {}
    for key, item in items:
        groups.setdefault(key, []).append(item)
    return sorted(groups.items())


def _merged_stats(rows: list[NameStats]) -> NameStats:
    if len(rows) == 1:
        return rows[0]  # read only: the summary's own row
    merged = NameStats()
    for stats in rows:
        merged.merge(stats)
    return merged


def _merged_entry(stats: Any, name: str, method: str, entries: list[Any]) -> Any:
    if len(entries) == 1:
        return entries[0]
    from locust.stats import StatsEntry

    merged = StatsEntry(stats, name, method)
    for entry in entries:
        merged.extend(entry)
    return merged


def llm_families(rows: Sequence[Row]) -> list[Metric]:
    """Histograms and counters of the LLM summary, one series per (name, model) row."""
    return [*_histogram_families(rows), *_outcome_families(rows), *_counter_families(rows)]


def _histogram_families(rows: Sequence[Row]) -> Iterator[Metric]:
    for metric, attribute, boundaries, doc in _HISTOGRAMS:
        family = HistogramMetricFamily(metric, doc, labels=_NAME_MODEL)
        for labels, stats in rows:
            histogram: LogHistogram = getattr(stats, attribute)
            family.add_metric(labels, prometheus_buckets(histogram, boundaries), histogram.sum / 1000.0)
        yield family


def _outcome_families(rows: Sequence[Row]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "locust_aiapi_requests_total",
        "AI requests by outcome: success, failure, cancelled.",
        labels=(*_NAME_MODEL, "outcome"),
    )
    failures = CounterMetricFamily(
        "locust_aiapi_failures_total", "Failed AI requests by failure kind.", labels=(*_NAME_MODEL, "kind")
    )
    for (name, model), stats in rows:
        outcomes = (("success", stats.successes), ("failure", stats.failures), ("cancelled", stats.cancelled))
        for outcome, n in outcomes:
            requests.add_metric([name, model, outcome], n)
        for kind in sorted(stats.failures_by_kind):
            failures.add_metric([name, model, kind], stats.failures_by_kind[kind])
    yield from (requests, failures)


def _counter_families(rows: Sequence[Row]) -> Iterator[Metric]:
    for metric, attribute, doc in _COUNTERS:
        family = CounterMetricFamily(metric, doc, labels=_NAME_MODEL)
        for labels, stats in rows:
            family.add_metric(labels, getattr(stats, attribute))
        yield family


def runner_families(runner: Any, lost_workers: int) -> list[Metric]:
    """Users, workers by state (master only), lost workers and the run state."""
    users = runner.user_count
    families: list[Metric] = [GaugeMetricFamily("locust_aiapi_users", "Running users.", value=users)]
    clients = getattr(runner, "clients", None)  # only a MasterRunner has workers
    if clients is not None:
        by_state = Counter(str(client.state) for client in clients.values())
        workers = GaugeMetricFamily("locust_aiapi_workers", "Connected workers by state.", labels=("state",))
        for state in (*RUN_STATES, *sorted(set(by_state) - set(RUN_STATES))):
            workers.add_metric([state], by_state.get(state, 0))
        families.append(workers)
    lost = GaugeMetricFamily("locust_aiapi_workers_lost", "Workers lost in the run.", value=lost_workers)
    families.append(lost)
    run_state = GaugeMetricFamily("locust_aiapi_run_state", "1 for the current run state.", labels=("state",))
    current = str(runner.state)
    for state in (*RUN_STATES, *([current] if current not in RUN_STATES else [])):
        run_state.add_metric([state], 1.0 if state == current else 0.0)
    return [*families, run_state]


def locust_families(rows: Sequence[tuple[tuple[str, str], Any]]) -> list[Metric]:
    """Locust's own per-(method, name) statistics, as the abandoned locust_exporter served them."""
    by = _METHOD_NAME
    requests = CounterMetricFamily("locust_requests_total", "Requests, failures included.", labels=by)
    failures = CounterMetricFamily("locust_failures_total", "Failed requests.", labels=by)
    rps = GaugeMetricFamily("locust_requests_current_rps", "Recent requests per second.", labels=by)
    fails = GaugeMetricFamily("locust_requests_current_fail_per_sec", "Recent failures per s.", labels=by)
    quantiles = GaugeMetricFamily(
        "locust_response_time_seconds", "Response time percentiles.", labels=(*by, "quantile")
    )
    average = GaugeMetricFamily("locust_response_time_avg_seconds", "Mean response time.", labels=by)
    for (name, method), entry in rows:
        labels = [method, name]
        requests.add_metric(labels, entry.num_requests)
        failures.add_metric(labels, entry.num_failures)
        rps.add_metric(labels, entry.current_rps)
        fails.add_metric(labels, entry.current_fail_per_sec)
        for q in LOCUST_QUANTILES:
            seconds = entry.get_response_time_percentile(q) / 1000.0
            quantiles.add_metric([*labels, _go_float(q)], seconds)
        average.add_metric(labels, entry.avg_response_time / 1000.0)
    return [requests, failures, rps, fails, quantiles, average]


class AICollector(Collector):
    """Reads ``summary()``, ``environment.runner`` and ``lost_workers()`` on every scrape; never raises."""

    def __init__(
        self,
        environment: Any,
        summary: Callable[[], LLMSummary],
        lost_workers: Callable[[], int] = lambda: 0,
        max_label_values: int = DEFAULT_MAX_LABEL_VALUES,
    ) -> None:
        self._environment = environment
        self._summary = summary
        self._lost_workers = lost_workers
        self._names = LabelCap(max_label_values)
        self._models = LabelCap(max_label_values)
        self._failure_logged = False

    def collect(self) -> Iterator[Metric]:
        # a scrape must never take the run down: a section that fails is left out, the others are served
        sections: tuple[Callable[[], list[Metric]], ...] = (self._llm, self._runner, self._locust)
        for section in sections:
            try:
                families = section()
            except Exception:
                self._log_failure(section.__name__)
                continue
            yield from families

    def _llm(self) -> list[Metric]:
        by_key = list(self._summary().by_key.items())
        self._names.admit(name for (name, _), _ in by_key)
        self._models.admit(model for (_, model), _ in by_key)
        capped = (((self._names(name), self._models(model)), stats) for (name, model), stats in by_key)
        return llm_families([(key, _merged_stats(group)) for key, group in _grouped(capped)])

    def _runner(self) -> list[Metric]:
        runner = self._environment.runner
        return [] if runner is None else runner_families(runner, self._lost_workers())

    def _locust(self) -> list[Metric]:
        runner = self._environment.runner
        if runner is None:
            return []
        stats = runner.stats
        entries = list(stats.entries.values())
        self._names.admit(entry.name for entry in entries)
        capped = (((self._names(entry.name), entry.method), entry) for entry in entries)
        rows = [(key, _merged_entry(stats, *key, group)) for key, group in _grouped(capped)]
        return locust_families(rows)

    def _log_failure(self, section: str) -> None:
        if self._failure_logged:
            log.debug("locust-aiapi: /metrics section %s failed again", section, exc_info=True)
            return
        self._failure_logged = True
        log.exception("locust-aiapi: /metrics could not export %s (served without it; logged once)", section)
