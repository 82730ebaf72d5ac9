"""Run-level aggregates beyond the summary: phases, time series, goodput and the open model.

Fed from the ``ai_request`` hook on the process that made each request. Workers ship what they
aggregated since their last report under :data:`EXTRAS_KEY` in Locust's own worker report; the
master merges it (the same channel and rhythm as the summary, see :mod:`_distributed`). The master
tells its workers how many they are (each takes that share of the arrival rate) and which phase of
the load shape is running, with one custom message. Listeners log and carry on; they never raise.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent

from ._arrival import ArrivalConfig, ArrivalScheduler, ArrivalStats
from ._errors import ConfigurationError
from ._goodput import SLO, GoodputCounter
from ._phases import PhaseAggregator, PhaseInfo
from ._pricing import Price, load_prices
from ._records import RequestRecord
from ._shapes import AIShape, Phase
from ._thresholds import parse_threshold, split_thresholds
from ._timeseries import TimeSeries

__all__ = ["EXTRAS_KEY", "RUN_MESSAGE", "Extras", "arrival_scheduler", "enter_phase", "extras_for", "install"]

EXTRAS_KEY = "locust_aiapi_extras"
RUN_MESSAGE = "locust_aiapi_run"
USERS_SAMPLE_S = 1.0

log = logging.getLogger("locust_aiapi")


@dataclass
class Extras:
    """Everything this module aggregates for one environment."""

    slo: SLO = field(default_factory=SLO)
    phases: PhaseAggregator = field(default_factory=PhaseAggregator)
    series: TimeSeries = field(default_factory=TimeSeries)
    goodput: GoodputCounter = field(default_factory=GoodputCounter)
    arrival: ArrivalStats = field(default_factory=ArrivalStats)
    arrival_config: ArrivalConfig | None = None
    arrival_share: float = 1.0
    scheduler: ArrivalScheduler | None = None
    sampler: gevent.Greenlet | None = None
    prices: dict[str, Price] = field(default_factory=dict)
    exit_code: int | None = None  # what we last set environment.process_exit_code to

    def add(self, record: RequestRecord) -> None:
        self.phases.add(record)
        self.series.add(record)
        self.goodput.add(record, self.slo)


_extras: weakref.WeakKeyDictionary[Any, Extras] = weakref.WeakKeyDictionary()


def extras_for(environment: Any) -> Extras:
    extras = _extras.get(environment)
    if extras is None:
        extras = _extras[environment] = Extras(slo=SLO.from_options(environment.parsed_options))
    return extras


def _role(environment: Any) -> str:
    from locust.runners import MasterRunner, WorkerRunner

    runner = environment.runner
    return (
        "master"
        if isinstance(runner, MasterRunner)
        else "worker"
        if isinstance(runner, WorkerRunner)
        else "local"
    )


def install(events: Any) -> None:
    """Register the listeners (called by the plugin's ``install``, before its own)."""
    events.test_start.add_listener(_guard(_on_test_start))
    events.test_stop.add_listener(_guard(_on_test_stop))
    events.report_to_master.add_listener(_guard(_on_report_to_master))
    events.worker_report.add_listener(_guard(_on_worker_report))


def _guard(listener: Callable[..., None]) -> Callable[..., None]:
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            listener(*args, **kwargs)
        except Exception:
            log.exception("locust-aiapi: %s failed", listener.__name__)

    return guarded


def setup(environment: Any, hook: Any) -> None:
    """At init: check the configuration (raises ConfigurationError), listen to ``hook``, messages."""
    extras = extras_for(environment)
    _check_shape(environment)
    extras.arrival_config = _check_arrival(environment)
    extras.prices = _check_prices(environment)
    hook.add_listener(_guard(lambda record, **_: extras.add(record)))
    runner = environment.runner
    if runner is not None and _role(environment) == "worker" and RUN_MESSAGE not in runner.custom_messages:
        runner.register_message(RUN_MESSAGE, _guard(_on_run_message))


def _check_shape(environment: Any) -> None:
    shape = environment.shape_class
    if isinstance(shape, AIShape) and _role(environment) != "worker":  # the master runs it
        try:
            shape.plan(environment.parsed_options)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None


def _check_prices(environment: Any) -> dict[str, Price]:
    path = getattr(environment.parsed_options, "ai_pricing", None)
    try:
        return load_prices(path)
    except ValueError as exc:
        raise ConfigurationError(f"--ai-pricing: {exc}") from None


def _check_arrival(environment: Any) -> ArrivalConfig | None:
    from ._arrival_user import ArrivalRateUser  # late import: it imports the users, which import us

    classes = [cls for cls in environment.user_classes or () if issubclass(cls, ArrivalRateUser)]
    fallback = max((cls.arrival_rate_per_s or 0.0 for cls in classes), default=0.0) or None
    config = ArrivalConfig.from_options(environment.parsed_options, fallback)
    for cls in classes:
        if cls.wait_time is not ArrivalRateUser.wait_time:
            raise ConfigurationError(
                f"{cls.__name__} is an ArrivalRateUser: it paces itself, remove its wait_time"
            )
    if classes and config is None and _role(environment) != "worker":
        names = ", ".join(cls.__name__ for cls in classes)
        raise ConfigurationError(f"no arrival rate for {names}: pass --ai-arrival-rate N (starts per second)")
    if config is not None and not classes:
        log.warning("locust-aiapi: --ai-arrival-rate has no effect: no user class is an ArrivalRateUser")
        return None
    return config


def arrival_scheduler(environment: Any, fallback_rate: float | None) -> ArrivalScheduler:
    """This process's open-model scheduler (created on first use, from the options of the test)."""
    extras = extras_for(environment)
    if extras.scheduler is None:
        config = ArrivalConfig.from_options(environment.parsed_options, fallback_rate)
        if config is None:
            raise ConfigurationError("ArrivalRateUser needs a rate: --ai-arrival-rate N (starts per second)")
        extras.arrival_config = config
        extras.scheduler = ArrivalScheduler(config, extras.arrival)
        extras.scheduler.share = extras.arrival_share
        extras.scheduler.start()
    return extras.scheduler


def enter_phase(environment: Any, phase: Phase, plan: list[Phase]) -> None:
    """The shape's process moves to ``phase``: record it, and tell the workers."""
    try:
        extras = extras_for(environment)
        now = time.perf_counter()
        if extras.phases.enter(phase.index, now):
            extras.phases.describe(
                PhaseInfo(
                    phase.index,
                    phase.label,
                    phase.users,
                    phase.spawn_rate,
                    phase.start_s,
                    phase.duration_s,
                    now,
                )
            )
        if _role(environment) == "master":
            _broadcast(environment, phase.index)
    except Exception:
        log.exception("locust-aiapi: could not record the shape's phase")


def _broadcast(environment: Any, phase: int | None) -> None:
    runner = environment.runner
    runner.send_message(RUN_MESSAGE, {"workers": max(1, runner.worker_count), "phase": phase})


def _on_run_message(environment: Any, msg: Any, **_: Any) -> None:
    extras = extras_for(environment)
    data = msg.data or {}
    extras.arrival_share = 1.0 / max(1, int(data.get("workers") or 1))
    if extras.scheduler is not None:
        extras.scheduler.share = extras.arrival_share
    phase = data.get("phase")
    if phase is None:
        extras.phases.clear()
    else:
        extras.phases.enter(int(phase), time.perf_counter())


def _on_test_start(environment: Any, **_: Any) -> None:
    extras = extras_for(environment)
    role = _role(environment)
    extras.slo = SLO.from_options(environment.parsed_options)
    extras.series, extras.goodput = TimeSeries(), GoodputCounter()
    if extras.scheduler is not None:
        extras.scheduler.stop()
        extras.scheduler = None
    extras.arrival.reset()
    if role == "worker":
        extras.phases.reset_data(time.perf_counter())
        return
    if isinstance(environment.shape_class, AIShape):
        extras.phases.reset_data(time.perf_counter())
    else:
        extras.phases.clear()
    if role == "master":
        _broadcast(environment, extras.phases.current)
    _warn_malformed_thresholds(environment)
    if extras.sampler is not None:
        extras.sampler.kill(block=False)
    extras.sampler = gevent.spawn(_sample_users, environment, extras.series)


def _warn_malformed_thresholds(environment: Any) -> None:
    """The web UI's form is not validated like the command line: say so now, not only at the end."""
    for text in split_thresholds(getattr(environment.parsed_options, "ai_threshold", None)):
        try:
            parse_threshold(text)
        except ValueError as exc:
            log.error("locust-aiapi: %s (it will count as failed)", exc)


def _sample_users(environment: Any, series: TimeSeries) -> None:
    while True:  # killed at test_stop
        try:
            series.sample_users(time.time(), int(environment.runner.user_count))
        except Exception:
            log.exception("locust-aiapi: could not sample the user count")
        gevent.sleep(USERS_SAMPLE_S)


def _on_test_stop(environment: Any, **_: Any) -> None:
    extras = _extras.get(environment)
    if extras is None:
        return
    if extras.scheduler is not None:
        extras.scheduler.stop()
    if extras.sampler is not None:
        extras.sampler.kill(block=False)
        extras.sampler = None
    current = extras.phases.info.get(extras.phases.current) if extras.phases.current is not None else None
    if current is not None and current.left_s is None:
        current.left_s = time.perf_counter()


def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    for environment, extras in list(_extras.items()):
        if _role(environment) != "worker":
            continue
        parts = {
            "phases": extras.phases.take_report(),
            "series": extras.series.take_report(),
            "goodput": extras.goodput.take_report(),
            "arrival": extras.arrival.take_report(),
        }
        payload = {key: part for key, part in parts.items() if part is not None}
        if payload:
            data[EXTRAS_KEY] = payload


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    payload = data.get(EXTRAS_KEY)
    if not payload:
        return
    for environment, extras in list(_extras.items()):
        if _role(environment) == "master":
            _absorb(extras, client_id, payload)


def _absorb(extras: Extras, client_id: str, payload: dict[str, Any]) -> None:
    targets: dict[str, Callable[[Any], None]] = {
        "phases": extras.phases.absorb,
        "series": extras.series.absorb,
        "goodput": extras.goodput.absorb,
        "arrival": extras.arrival.absorb,
    }
    for key, absorb in targets.items():
        part = payload.get(key)
        if part is None:
            continue
        try:
            absorb(part)
        except (ValueError, TypeError, AttributeError):
            log.error("locust-aiapi: ignored a malformed %s report from worker %s", key, client_id)
