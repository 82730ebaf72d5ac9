"""Everything one run aggregates, per Locust environment, in one place.

The users, shapes, distributed listeners and end-of-run outputs read and write a
:class:`RunState`; none of them keeps state of its own. :func:`attach` creates it (once per
environment) together with the ``ai_request`` hook that feeds it. This module imports only the
aggregation below it, never the glue above it.
"""

from __future__ import annotations

import enum
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust.event import EventHook

from ._arrival import ArrivalConfig, ArrivalScheduler, ArrivalStats
from ._client_lag import LoopLagProbe
from ._errors import ConfigurationError
from ._goodput import SLO, GoodputCounter
from ._guard import guarded
from ._jsonl import JsonlWriter
from ._metrics import RecordMetrics
from ._options import AIOptions
from ._phases import PhaseAggregator, PhaseInfo
from ._pricing import Price
from ._records import RequestRecord
from ._rx_stamps import keep_stamping_on
from ._summary import LLMSummary
from ._timeseries import TimeSeries
from ._workers import WorkerLedger
from ._workload_stats import WorkloadStats

__all__ = ["AI_REQUEST_EVENT", "Role", "RunState", "all_states", "attach", "role_of", "state_of"]

AI_REQUEST_EVENT = "ai_request"
"""Name of the hook on ``environment.events``, fired once per AI request with ``record=``."""

log = logging.getLogger("locust_aiapi")


class Role(str, enum.Enum):
    LOCAL = "local"
    MASTER = "master"
    WORKER = "worker"


def role_of(environment: Any) -> Role:
    from locust.runners import MasterRunner, WorkerRunner

    runner = environment.runner
    if isinstance(runner, MasterRunner):
        return Role.MASTER
    return Role.WORKER if isinstance(runner, WorkerRunner) else Role.LOCAL


@dataclass
class RunState:
    """The aggregates of one process for the current test, and what it needs to produce them."""

    options: AIOptions = field(default_factory=AIOptions)
    summary: LLMSummary = field(default_factory=LLMSummary)
    phases: PhaseAggregator = field(default_factory=PhaseAggregator)
    series: TimeSeries = field(default_factory=TimeSeries)
    goodput: GoodputCounter = field(default_factory=GoodputCounter)
    workload: WorkloadStats = field(default_factory=WorkloadStats)
    slo: SLO = field(default_factory=SLO)
    arrival: ArrivalStats = field(default_factory=ArrivalStats)
    arrival_config: ArrivalConfig | None = None
    arrival_share: float = 1.0
    scheduler: ArrivalScheduler | None = None
    jsonl: JsonlWriter | None = None
    ledger: WorkerLedger | None = None  # master only
    loop_lag: LoopLagProbe = field(default_factory=LoopLagProbe)  # runs where users run (not a master)
    prices: dict[str, Price] = field(default_factory=dict)
    exit_code: int | None = None  # what we last set environment.process_exit_code to
    ticker: gevent.Greenlet | None = None  # samples users and flushes the JSONL during a test
    live: gevent.Greenlet | None = None  # prints the console's live line during a headless test
    console_text: list[str] = field(default_factory=list)  # end-of-run text held until Locust's tables
    prompt_sources: dict[Any, Any] = field(default_factory=dict)  # by user class, this test (see _workload)
    # a worker's place among the workers, as the master said: (index, count), its prompt share
    worker_place: tuple[int, int] | None = None
    prompt_bases: dict[Any, Any] = field(default_factory=dict)  # loaded once: what each test shards
    tests_started: int = 0  # tests begun in this process (the web UI starts one per Start)
    running: bool = False  # between begin_test and end_test
    pending_outputs: gevent.Greenlet | None = None  # a web-UI master's end-of-test outputs, due soon

    def record(self, record: RequestRecord) -> None:
        """One finished AI request of this process: its metrics derived once, for every aggregate."""
        metrics = RecordMetrics.of(record)
        self.summary.add(record, metrics)
        self.phases.add(record, metrics)
        self.series.add(record, metrics)
        self.goodput.add(record, self.slo, metrics)
        self.workload.add(record)
        if self.jsonl is not None:
            self.jsonl.write(record, metrics)

    def begin_test(self, options: AIOptions, now_s: float, keep_phase: bool) -> None:
        """A test starts: fresh aggregates; ``keep_phase`` keeps the phase the shape just entered."""
        self.options = options
        self.tests_started += 1
        self.running = True
        self.slo = SLO.from_options(options)
        self.summary, self.series, self.goodput = LLMSummary(), TimeSeries(), GoodputCounter()
        self.workload = WorkloadStats()
        self.loop_lag.reset()
        if self.ledger is None:  # where users run
            self.loop_lag.start()
            keep_stamping_on()  # before the first request: the kernel turns stamping on with a delay
        self.stop_scheduler()
        self.scheduler = None
        self.arrival.reset()
        self.prompt_sources = {}  # a new test starts each source from its beginning
        if keep_phase:
            self.phases.reset_data(now_s)
        else:
            self.phases.clear()
        if self.ledger is not None:
            self.ledger = self.ledger.new_test()

    def end_test(self, now_s: float) -> None:
        self.running = False
        self.worker_place = None  # the next test's is told at its start (a worker back late: its own)
        self.stop_scheduler()
        self.loop_lag.stop()
        current = self.phases.info.get(self.phases.current) if self.phases.current is not None else None
        if current is not None and current.left_s is None:
            current.left_s = now_s

    def enter_phase(self, info: PhaseInfo) -> None:
        """The shape (on this process) entered a phase."""
        if self.phases.enter(info.index, info.entered_s):
            self.phases.describe(info)

    def follow_phase(self, index: int | None, share: float, now_s: float) -> None:
        """A worker is told the phase that runs and its share of the arrival rate."""
        self.arrival_share = share
        if self.scheduler is not None:
            self.scheduler.share = share
        if index is None:
            self.phases.clear()
        else:
            self.phases.enter(index, now_s)

    def follow_place(self, index: int, count: int) -> None:
        """A worker is told its place among the workers; a new one re-shards its prompt sources."""
        if self.worker_place != (index, count):
            self.worker_place = (index, count)
            self.prompt_sources = {}

    def arrival_scheduler(self, fallback_rate: float | None) -> ArrivalScheduler:
        """This process's open-model scheduler (created on first use, from the options of the test)."""
        if self.scheduler is None:
            config = ArrivalConfig.from_options(self.options, fallback_rate)
            if config is None:
                raise ConfigurationError(
                    "ArrivalRateUser needs a rate: --ai-arrival-rate N (starts per second)"
                )
            self.arrival_config = config
            self.scheduler = ArrivalScheduler(config, self.arrival)
            self.scheduler.share = self.arrival_share
            self.scheduler.start()
        return self.scheduler

    def stop_scheduler(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()

    def flush(self) -> None:
        if self.jsonl is not None:
            try:
                self.jsonl.flush()
            except OSError:
                log.exception("locust-aiapi could not flush the requests JSONL")


_states: weakref.WeakKeyDictionary[Any, RunState] = weakref.WeakKeyDictionary()


def state_of(environment: Any) -> RunState | None:
    """The run state of ``environment``, or None when the plugin never saw it (no side effect)."""
    return _states.get(environment)


def all_states() -> list[tuple[Any, RunState]]:
    """Every (environment, state) of this process (Locust's distributed events name no environment)."""
    return list(_states.items())


def attach(environment: Any) -> RunState:
    """The run state of ``environment``, created with its ``ai_request`` hook on first use."""
    state = _states.get(environment)
    if state is None:
        state = _states[environment] = RunState(options=AIOptions.from_parsed(environment.parsed_options))
        hook = getattr(environment.events, AI_REQUEST_EVENT, None)
        if hook is None:
            hook = EventHook()  # type: ignore[no-untyped-call]
            setattr(environment.events, AI_REQUEST_EVENT, hook)
        add = guarded(state.record, "recording a request")
        hook.add_listener(lambda record, **_: add(record))
    return state
