"""The run's configuration as the report shows it: what was asked for, in words, without secrets.

Read at the end of a run from Locust's parsed options, our options and the report itself (the models
that were actually called, the SLOs that were applied). Never the API key; the host without user:password.
"""

from __future__ import annotations

from typing import Any

from ._options import AIOptions
from ._report_types import RunReport

__all__ = ["public_host", "run_config"]


def public_host(host: str | None) -> str | None:
    """The host without any user:password part."""
    if not host or "@" not in host:
        return host
    scheme, sep, rest = host.partition("://")
    return f"{scheme}{sep}{rest.split('@', 1)[1]}" if sep else host.split("@", 1)[1]


def _seconds(value: float | None) -> str:
    return "until stopped" if value is None else f"{value:g} s"


def _plan(shape: Any) -> str | None:
    """The shape's plan, phase by phase (None: no shape, or one without a plan of ours)."""
    phases = getattr(shape, "phases", None)
    if shape is None or not callable(phases):
        return None
    try:
        plan = phases()
    except Exception:  # a plan that does not parse was refused at start; the report must not fail on it
        return None
    return "; ".join(f"{p.label} ({_seconds(p.duration_s)}, spawn {p.spawn_rate:g}/s)" for p in plan)


def _dialects(environment: Any, options: AIOptions) -> str:
    if options.dialect:
        return options.dialect
    names = set()
    for cls in environment.user_classes or ():
        dialect = getattr(cls, "dialect", None)
        if dialect is not None:
            names.add(
                dialect if isinstance(dialect, str) else getattr(dialect, "__name__", type(dialect).__name__)
            )
    return ", ".join(sorted(names)) or "–"


def _max_tokens(options: AIOptions, report: RunReport) -> str:
    if options.output_tokens:
        return options.output_tokens
    workload = report.get("workload")
    requested = workload["requested"] if workload else None
    if requested and requested["output_requests"]:
        mean = requested["requested_output_tokens"] / requested["output_requests"]
        return f"from the workload: mean {mean:,.0f} over {requested['output_requests']:,} requests"
    return "not set (the server's default)"


def _run_time(value: Any) -> str:
    if isinstance(value, int | float) and value:
        return _seconds(value)
    return str(value) if value else "until stopped"


def _locust(parsed: Any, shape: Any) -> list[tuple[str, str]]:
    if parsed is None:
        return []
    users, rate, run_time = (getattr(parsed, key, None) for key in ("num_users", "spawn_rate", "run_time"))
    by_shape = " (the shape decides)" if shape is not None else ""
    return [
        ("Users", f"{users if users is not None else '–'}{by_shape}"),
        ("Spawn rate", f"{rate if rate is not None else '–'}/s{by_shape}"),
        ("Run time", f"{_run_time(run_time)}{by_shape}"),
    ]


def run_config(environment: Any, options: AIOptions, report: RunReport) -> dict[str, str]:
    """Setting -> value, in the order the report shows them."""
    shape = environment.shape_class
    goodput = report.get("goodput")
    slo = goodput["slo"] if goodput else {}
    models = sorted(report["cost"]["models"]) if report.get("cost") else []
    rows = [
        ("Host", public_host(environment.host) or "–"),
        *_locust(environment.parsed_options, shape),
        ("Shape", type(shape).__name__ if shape is not None else "none (Locust's users and spawn rate)"),
        ("Plan", _plan(shape) or "–"),
        ("Model", options.model or ", ".join(models) or "–"),
        ("Dialect", _dialects(environment, options)),
        ("max_tokens", _max_tokens(options, report)),
        ("Thresholds", ", ".join(options.thresholds) or "none"),
        ("SLO per request", ", ".join(f"{name} ≤ {limit:g}" for name, limit in slo.items()) or "none"),
    ]
    if options.arrival_rate_per_s is not None:
        rows.append(("Open model", f"{options.arrival_rate_per_s:g} starts/s"))
    return dict(rows)
