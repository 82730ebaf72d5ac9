"""Load shapes for AI APIs: k6-style stages, a spike, a step sweep, and the open model's pool.

Each shape is a plan of :class:`Phase` es (users to reach, how fast, for how long) computed from
class attributes, overridden by ``--ai-*`` options. ``tick()`` finds the phase of the current run
time, tells the phase tracker when a new one begins (so the report can aggregate per phase), and
hands Locust ``(users, spawn_rate)``. The bases are abstract: a locustfile subclasses one,
possibly with nothing in its body, and Locust picks the subclass up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from locust import LoadTestShape

from ._distributed import announce_phase
from ._errors import ConfigurationError
from ._options import AIOptions
from ._phases import Phase
from ._shape_specs import SpikeSpec, parse_duration_s, parse_spike, parse_stages, parse_steps

__all__ = [
    "AIShape",
    "ConstantArrivalRateShape",
    "Phase",
    "SpikeShape",
    "StagesShape",
    "StepSweepShape",
    "plan_spike",
    "plan_stages",
    "plan_steps",
]

log = logging.getLogger("locust_aiapi")


def _phases(parts: Sequence[tuple[str, int, float, float | None]]) -> list[Phase]:
    """(label, users, spawn_rate, duration_s) -> consecutive phases starting at 0 s."""
    phases, start = [], 0.0
    for index, (label, users, rate, duration) in enumerate(parts):
        phases.append(Phase(index, label, users, rate, start, duration))
        start += duration or 0.0
    return phases


def _jump_rate(previous: int, users: int, ramp_s: float) -> float:
    return max(1.0, abs(users - previous)) / ramp_s


def plan_stages(stages: Sequence[tuple[float, int]]) -> list[Phase]:
    """k6 ``ramping-vus``: from 0 users, ramp linearly to each target over its stage's duration."""
    parts, previous = [], 0
    for duration_s, target in stages:
        rate = abs(target - previous) / duration_s if target != previous else max(1.0, float(target))
        verb = f"ramp {previous}→{target}" if target != previous else f"hold {target}"
        parts.append((f"{verb} users", target, rate, duration_s))
        previous = target
    return _phases(parts)


def plan_steps(steps: Sequence[int], step_duration_s: float, ramp_s: float = 1.0) -> list[Phase]:
    """One phase per concurrency level, each reached within ``ramp_s`` and held ``step_duration_s``."""
    parts, previous = [], 0
    for users in steps:
        parts.append((f"{users} users", users, _jump_rate(previous, users, ramp_s), step_duration_s))
        previous = users
    return _phases(parts)


def plan_spike(spec: SpikeSpec) -> list[Phase]:
    """Baseline, a sudden jump to the peak (held), then back down to the baseline."""
    jump = spec.rate or _jump_rate(spec.base, spec.peak, 1.0)
    return _phases(
        [
            ("baseline", spec.base, _jump_rate(0, spec.base, 1.0), spec.before_s),
            ("spike", spec.peak, jump, spec.hold_s),
            ("recovery", spec.base, jump, spec.after_s),
        ]
    )


def phase_at(phases: Sequence[Phase], run_time_s: float) -> Phase | None:
    """The phase running at ``run_time_s``, or None once the plan is over."""
    for phase in phases:
        end = phase.end_s
        if end is None or run_time_s < end:
            return phase
    return None


def _ai(parsed: Any) -> AIOptions:
    """Our options in Locust's parsed options (defaults outside Locust). Raises ValueError."""
    try:
        return AIOptions.from_parsed(parsed)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


def _locust_option(parsed: Any, name: str) -> Any:
    return getattr(parsed, name, None) if parsed is not None else None


class AIShape(LoadTestShape):
    """Base of the shapes below: a plan of phases, followed by ``tick()``, reported per phase."""

    abstract: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._plan: list[Phase] | None = None
        self._entered: int | None = None

    def plan(self, options: Any) -> list[Phase]:
        """The phases for Locust's parsed options (None outside Locust). Raises ValueError."""
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        """The plan for this run (computed once per run, from the options at its start)."""
        if self._plan is None:
            self._plan = self.plan(self._options())
        return self._plan

    def reset_time(self) -> None:
        super().reset_time()  # type: ignore[no-untyped-call]
        self._plan = None
        self._entered = None

    def current_phase(self) -> Phase | None:
        return phase_at(self.phases(), float(self.get_run_time()))  # type: ignore[no-untyped-call]

    def tick(self) -> tuple[int, float] | None:
        try:
            phase = self.current_phase()
        except ValueError as exc:  # options changed in the web UI: the command line was checked at start
            log.error("locust-aiapi: %s; stopping the test", exc)
            return None
        if phase is None:
            return None
        if phase.index != self._entered:
            self._entered = phase.index
            self._announce(phase)
        return phase.users, phase.spawn_rate

    def _options(self) -> Any:
        runner = self.runner
        return getattr(runner.environment, "parsed_options", None) if runner is not None else None

    def _announce(self, phase: Phase) -> None:
        runner = self.runner
        if runner is not None:
            announce_phase(runner.environment, phase)


class StagesShape(AIShape):
    """Ramp linearly through ``stages`` ((duration_s, target users), ...), like k6 ``ramping-vus``.

    ``--ai-stages 2m:300,5m:300,2m:0`` overrides the class attribute.
    """

    abstract: ClassVar[bool] = True
    stages: ClassVar[Sequence[tuple[float, int]]] = ()

    def plan(self, options: Any) -> list[Phase]:
        text = _ai(options).stages
        stages = parse_stages(text) if text else tuple(self.stages)
        if not stages:
            raise ValueError(
                f"{type(self).__name__} has no stages: set 'stages' or pass --ai-stages 2m:300,..."
            )
        return plan_stages(stages)


class StepSweepShape(AIShape):
    """Hold each concurrency level of ``steps`` for ``step_duration_s`` (the article's 50/100/200 benchmark).

    ``--ai-steps 50,100,200`` and ``--ai-step-duration 60s`` override the class attributes. Each step is
    reached within ``step_ramp_s`` seconds; the report has one row per step.
    """

    abstract: ClassVar[bool] = True
    steps: ClassVar[Sequence[int]] = ()
    step_duration_s: ClassVar[float] = 60.0
    step_ramp_s: ClassVar[float] = 1.0

    def plan(self, options: Any) -> list[Phase]:
        text, duration = _ai(options).steps, _ai(options).step_duration
        steps = parse_steps(text) if text else tuple(self.steps)
        if not steps:
            raise ValueError(f"{type(self).__name__} has no steps: set 'steps' or pass --ai-steps 50,100,200")
        step_s = parse_duration_s(duration) if duration else float(self.step_duration_s)
        return plan_steps(steps, step_s, float(self.step_ramp_s))


class SpikeShape(AIShape):
    """A flash sale: ``base`` users, a sudden jump to ``peak`` held for a while, then back to ``base``.

    ``--ai-spike base=50,peak=500,before=30s,hold=1m,after=30s`` overrides the class attribute ``spike``.
    """

    abstract: ClassVar[bool] = True
    spike: ClassVar[SpikeSpec | None] = None

    def plan(self, options: Any) -> list[Phase]:
        text = _ai(options).spike
        spec = parse_spike(text) if text else self.spike
        if spec is None:
            raise ValueError(
                f"{type(self).__name__} has no spike: set 'spike' or pass --ai-spike base=50,peak=500"
            )
        return plan_spike(spec)


class ConstantArrivalRateShape(AIShape):
    """The open model's pool: ``-u`` users (idle ones wait for scheduled starts) for ``-t``.

    Use it with :class:`~locust_aiapi.ArrivalRateUser` users; the rate is ``--ai-arrival-rate``.
    ``-u``/``-t`` override ``users``/``duration_s``; without a duration it runs until stopped.
    """

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = True
    users: ClassVar[int] = 0
    duration_s: ClassVar[float | None] = None

    def plan(self, options: Any) -> list[Phase]:
        users = int(_locust_option(options, "num_users") or self.users)
        if users < 1:
            raise ValueError(f"{type(self).__name__} needs a pool of users: pass -u N or set 'users'")
        run_time = _locust_option(options, "run_time")
        duration = float(run_time) if run_time else self.duration_s
        return _phases([(f"open model, {users} users", users, float(users), duration)])
