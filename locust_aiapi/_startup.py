"""Checks at start: a wrong configuration stops the run with one clear line, before any request.

Everything here raises :class:`ConfigurationError`; the composition root turns it into exit
code 2. What is checked: the open files limit (raised; a low one only warns), the host, the load
shape's plan, the open model's rate, the workload's dataset and distributions, the pricing file and
every output file.
"""

from __future__ import annotations

import logging
import resource
from typing import Any
from urllib.parse import urlsplit

import gevent

from ._arrival import ArrivalConfig
from ._arrival_user import ArrivalRateUser
from ._end_of_run import output_path
from ._errors import ConfigurationError
from ._fd_limit import open_files_warning, raise_open_files_limit
from ._files import ensure_writable
from ._guard import guarded
from ._pricing import load_prices
from ._run_state import Role, RunState, role_of
from ._shapes import AIShape
from ._tls import check_ca_bundle, shared_context
from ._users import is_ai_user_class
from ._workload import base_source
from .dialects import resolve_dialect

__all__ = ["check_configuration", "check_host", "check_open_files", "watch_open_files"]

log = logging.getLogger("locust_aiapi")

USER_COUNT_POLL_S = 1.0
"""How often :func:`watch_open_files` looks at the users this process is asked to run."""
_ENDED_STATES = frozenset({"stopping", "stopped", "cleanup"})  # locust.runners' STATE_* values
_warned: list[bool] = [False]  # one open-files warning per process


def check_configuration(environment: Any, state: RunState, role: Role) -> None:
    """Everything that can be checked before the first request (raises ConfigurationError)."""
    check_open_files(environment, role)
    _check_hosts(environment)
    _check_tls(state.options.insecure, state.options.ca_bundle)
    for cls in environment.user_classes or ():
        if is_ai_user_class(cls):
            resolve_dialect(state.options.dialect or cls.dialect)
    if role is not Role.WORKER:  # the master (or the single process) runs the shape and writes outputs
        _check_shape(environment)
        for option, path in (
            ("--ai-summary-json", state.options.summary_json),
            ("--ai-report-html", state.options.report_html),
        ):
            if path:  # with the web UI, the first test's file (each test numbers its own)
                ensure_writable(option, output_path(environment, path, 1))
    base_source(state)  # a bad dataset or distribution stops the run here, and a good one is loaded once
    state.arrival_config = _check_arrival(environment, state, role)
    try:
        state.prices = load_prices(state.options.pricing)
    except ValueError as exc:
        raise ConfigurationError(f"--ai-pricing: {exc}") from None


def check_host(host: str, what: str = "--host") -> None:
    """An http(s) URL with a host part: anything else would fail on every request, or worse."""
    try:
        parts = urlsplit(host)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigurationError(f"{what} {host!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        if "://" not in host:
            raise ConfigurationError(f"{what} {host!r} has no scheme: write http://{host} or https://{host}")
        raise ConfigurationError(f"{what} {host!r}: only http:// and https:// are supported")
    if not parts.hostname:
        raise ConfigurationError(f"{what} {host!r} has no host name")


def check_open_files(environment: Any, role: Role) -> int | None:
    """Raise the soft open files limit to the hard one where streams are opened, and warn once when
    even that is below what ``-u`` needs. Locust's own check (in its main, before ours) only aims at
    10,000 and says so itself when it fails; a master opens no streams. What ``-u`` cannot say (a
    worker's share, a shape's phases, users typed in the web UI) :func:`watch_open_files` checks
    during the test. Returns the limit, or None."""
    if role is Role.MASTER:
        return None
    limit = raise_open_files_limit()
    users = getattr(environment.parsed_options, "num_users", None)
    if role is Role.LOCAL and isinstance(users, int):
        _warn_once(limit, users)
    return limit


def watch_open_files(environment: Any, **_: Any) -> None:
    """At test start on a worker or a local run: watch how many users this process is asked to run
    until the test stops, and warn once when the open files limit cannot hold them. A worker's share
    arrives with the master's spawn messages, one per ramp step, and a shape changes it by phase."""
    if role_of(environment) is not Role.MASTER and not _warned[0]:
        gevent.spawn(guarded(_watch_user_count, "checking the open files limit"), environment)


def _watch_user_count(environment: Any) -> None:
    runner = environment.runner
    while not _warned[0]:  # ends with the test (or once warned)
        gevent.sleep(USER_COUNT_POLL_S)
        if getattr(runner, "state", None) in _ENDED_STATES:
            return
        users = int(getattr(runner, "target_user_count", 0) or 0)
        if users:
            _warn_once(resource.getrlimit(resource.RLIMIT_NOFILE)[0], users)


def _warn_once(limit: int, users: int) -> None:
    warning = None if _warned[0] else open_files_warning(limit, users)
    if warning is not None:
        _warned[0] = True
        log.warning(warning)


def _check_hosts(environment: Any) -> None:
    classes = [cls for cls in environment.user_classes or () if is_ai_user_class(cls)]
    if environment.host:
        check_host(environment.host)
    for cls in classes:
        if cls.host and not environment.host:
            check_host(cls.host, f"{cls.__name__}.host")
    parsed = environment.parsed_options
    headless = parsed is not None and bool(getattr(parsed, "headless", False))
    missing = [cls.__name__ for cls in classes if not cls.host]
    if headless and not environment.host and missing:
        raise ConfigurationError(
            f"no host for {', '.join(missing)}: pass --host URL "
            "(for the mock server: locust-aiapi-mock --port 8000, then --host http://127.0.0.1:8000)"
        )


def _check_tls(insecure: bool, ca_bundle: str | None) -> None:
    if insecure and ca_bundle:
        raise ConfigurationError("--ai-insecure and --ai-ca-bundle contradict each other: pass one of them")
    if ca_bundle:
        check_ca_bundle(ca_bundle)
        shared_context(True, ca_bundle)  # built now: a bad bundle fails here, not at the first request
    if insecure:
        shared_context(False, None)  # logs the one warning line now, at start


def _check_shape(environment: Any) -> None:
    shape = environment.shape_class
    if isinstance(shape, AIShape):
        try:
            shape.plan(environment.parsed_options)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None


def _check_arrival(environment: Any, state: RunState, role: Role) -> ArrivalConfig | None:
    classes = [cls for cls in environment.user_classes or () if issubclass(cls, ArrivalRateUser)]
    fallback = max((cls.arrival_rate_per_s or 0.0 for cls in classes), default=0.0) or None
    config = ArrivalConfig.from_options(state.options, fallback)
    for cls in classes:
        if cls.wait_time is not ArrivalRateUser.wait_time:
            raise ConfigurationError(
                f"{cls.__name__} is an ArrivalRateUser: it paces itself, remove its wait_time"
            )
    if classes and config is None and role is not Role.WORKER:
        names = ", ".join(cls.__name__ for cls in classes)
        raise ConfigurationError(f"no arrival rate for {names}: pass --ai-arrival-rate N (starts per second)")
    if config is not None and not classes:
        log.warning("locust-aiapi: --ai-arrival-rate has no effect: no user class is an ArrivalRateUser")
        return None
    return config
