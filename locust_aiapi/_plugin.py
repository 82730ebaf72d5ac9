"""The composition root: every listener of the plugin is registered here, and only here.

``install()`` runs once when ``locust_aiapi`` is imported (from a locustfile), the way Locust
plugins register themselves. Each listener is wrapped by :func:`~locust_aiapi._guard.guarded`, so
none can raise into Locust. The listeners only route: state lives in :mod:`_run_state`, the work in
the modules they call.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import weakref
from typing import Any, NoReturn

import gevent

from . import _distributed, _end_of_run, _exporter, _live, _web_ui
from ._errors import ConfigurationError
from ._files import ensure_writable
from ._gc_pauses import FREEZER
from ._guard import guarded
from ._jsonl import JsonlWriter
from ._options import AIOptions, add_arguments
from ._run_state import Role, RunState, all_states, attach, role_of, state_of
from ._startup import check_configuration, watch_open_files
from ._summary import LLMSummary
from ._workers import WorkerLedger

__all__ = ["get_summary", "install"]

log = logging.getLogger("locust_aiapi")

TICK_S = 1.0
"""How often the run's ticker samples the user count and flushes the JSONL."""

LAST_REPORTS_S = 4.0
"""A web-UI master writes a test's outputs this long after its stop: Locust's workers report every
3 s (``WORKER_REPORT_INTERVAL``), and their last records ride on the first report after the stop."""

_installed_on: weakref.WeakSet[Any] = weakref.WeakSet()


def install(events: Any) -> None:
    """Register the plugin's listeners on a Locust ``Events`` object (idempotent)."""
    if events in _installed_on:
        return
    _installed_on.add(events)
    events.init_command_line_parser.add_listener(add_arguments)
    for hook, listener in (
        (events.init, _on_init),
        (events.test_start, _on_test_start),
        (events.test_stop, _on_test_stop),
        (events.quitting, _on_quitting),
        (events.quit, _on_quit),
        (events.test_start, _live.start_live_line),
        (events.test_start, watch_open_files),
        (events.test_stop, _live.stop_live_line),
        (events.report_to_master, _on_report_to_master),
        (events.worker_report, _on_worker_report),
    ):
        hook.add_listener(guarded(listener, listener.__name__.lstrip("_").replace("_", " ")))


def get_summary(environment: Any) -> LLMSummary:
    """The LLM summary being aggregated for ``environment`` (empty before the first request).

    On the master it is the merge of every worker's reports; on a worker, what it has not
    reported yet.
    """
    state = state_of(environment)
    return state.summary if state is not None else LLMSummary()


def fatal(message: str) -> NoReturn:
    """A configuration mistake: one clear line and exit code 2, no traceback."""
    sys.stderr.write(f"locust-aiapi: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def _on_init(environment: Any, web_ui: Any = None, **_: Any) -> None:
    try:
        _set_up(environment, web_ui)
    except ConfigurationError as exc:
        fatal(str(exc))  # SystemExit passes through the guard: Locust exits with code 2


def _set_up(environment: Any, web_ui: Any) -> None:
    state = attach(environment)
    state.options = AIOptions.from_parsed(environment.parsed_options)
    role = role_of(environment)
    check_configuration(environment, state, role)
    if role is Role.MASTER:
        state.ledger = WorkerLedger()
        gevent.spawn(_distributed.watch_workers, environment, gevent.sleep)
    if role is Role.WORKER:
        runner = environment.runner
        if _distributed.RUN_MESSAGE not in runner.custom_messages:
            handler = guarded(_distributed.follow_run_message, "following the master's run message")
            runner.register_message(_distributed.RUN_MESSAGE, handler)
    elif state.options.metrics_enabled:
        stop = _exporter.install(environment, web_ui, state)
        if stop is not None:
            environment.events.quitting.add_listener(guarded(lambda **_: stop(), "stopping /metrics"))
    if web_ui is not None and role is not Role.WORKER:
        _web_ui.install(environment, web_ui, state)
    if state.options.gc_freeze and role is not Role.MASTER:  # a master runs no users
        # the event's count is the whole run's on a worker: its own users' is the runner's
        spawned = guarded(lambda **_: FREEZER.spawned(environment.runner.user_count), "freezing the users")
        environment.events.spawning_complete.add_listener(spawned)
        environment.events.request.add_listener(guarded(lambda **_: FREEZER.request_ended(), "freezing"))
    _open_jsonl(environment, state, role)


def _open_jsonl(environment: Any, state: RunState, role: Role, test_number: int = 1) -> None:
    """Workers (--processes, --worker) each write requests.<pid>.jsonl, for every test they run; a
    single process with the web UI writes requests.<test>.jsonl, one file per test started."""
    path = state.options.requests_jsonl
    if not path or role is Role.MASTER:  # a master makes no requests: its workers write their own
        return
    if role is Role.WORKER:
        root, ext = os.path.splitext(path)
        path = f"{root}.{os.getpid()}{ext or '.jsonl'}"
    else:
        path = _end_of_run.output_path(environment, path, test_number)
    ensure_writable("--ai-requests-jsonl", path)
    if state.jsonl is not None:
        state.jsonl.close()
    state.jsonl = JsonlWriter(path)


def _on_test_start(environment: Any, **_: Any) -> None:
    state = attach(environment)
    try:
        options = AIOptions.from_parsed(environment.parsed_options)
    except ConfigurationError as exc:  # typed in the web UI's form: the command line was checked at init
        log.error("locust-aiapi: %s (keeping the previous value)", exc)
        options = state.options
    from ._shapes import AIShape

    _write_pending_outputs(environment, state)  # the previous test's, before its state is reset
    role = role_of(environment)
    keep_phase = role is Role.WORKER or isinstance(environment.shape_class, AIShape)
    state.begin_test(options, time.perf_counter(), keep_phase)
    if role is Role.LOCAL and environment.web_ui is not None and state.tests_started > 1:
        _open_jsonl(environment, state, role, state.tests_started)  # the first test's is open since init
    if role is Role.MASTER:
        _distributed.broadcast(environment, state.phases.current, starting=True)
    if state.ticker is not None:
        state.ticker.kill(block=False)
    state.ticker = gevent.spawn(_tick, environment, state, role is not Role.WORKER)


def _tick(environment: Any, state: RunState, sample_users: bool) -> None:
    """Until the test stops: sample the user count (for the time charts), flush the JSONL."""
    tick = guarded(state.flush, "flushing the requests JSONL")
    sample = guarded(
        lambda: state.series.sample_users(time.time(), int(environment.runner.user_count)),
        "sampling the user count",
    )
    while True:  # killed at test_stop
        if sample_users:
            sample()
        tick()  # a worker killed with SIGKILL loses at most a second of its JSONL
        gevent.sleep(TICK_S)


def _on_test_stop(environment: Any, **_: Any) -> None:
    """Local runs: every record is in once users are stopped. A headless master gets the
    workers' final reports only after test_stop (Locust's quit sends them), so it writes at
    quitting instead. A master with the web UI gets them with the workers' next periodic report
    (a worker told to stop sends none of its own), so it writes once that interval has passed."""
    state = state_of(environment)
    if state is None:
        return
    if state.ticker is not None:
        state.ticker.kill(block=False)
        state.ticker = None
    state.end_test(time.perf_counter())
    state.flush()
    FREEZER.stopped()
    role = role_of(environment)
    if role is Role.MASTER and not _headless_master(environment):
        write = guarded(_write_pending_outputs, "writing the end-of-test outputs")
        state.pending_outputs = gevent.spawn_later(LAST_REPORTS_S, write, environment, state)
    elif role is not Role.WORKER and not _headless_master(environment):
        _end_of_run.write_outputs(environment, state)


def _write_pending_outputs(environment: Any, state: RunState) -> None:
    """The outputs of the test that stopped last, if not written yet (a new Start writes them at once)."""
    pending, state.pending_outputs = state.pending_outputs, None
    if pending is not None:
        if pending is not gevent.getcurrent():
            pending.kill(block=False)
        _end_of_run.write_outputs(environment, state)


def _on_quitting(environment: Any, **_: Any) -> None:
    state = state_of(environment)
    if state is None:
        return
    state.flush()
    _write_pending_outputs(environment, state)  # a web-UI master quit right after a Stop
    if _headless_master(environment):
        _end_of_run.write_outputs(environment, state)


def _on_quit(exit_code: int, **_: Any) -> None:
    """After Locust's final tables (``quit`` names no environment): our held end-of-run text."""
    for _environment, state in all_states():
        _end_of_run.print_held(state)


def _headless_master(environment: Any) -> bool:
    parsed = environment.parsed_options
    return role_of(environment) is Role.MASTER and bool(getattr(parsed, "headless", False))


def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    for _environment, state in _states_with(Role.WORKER):
        payload = _distributed.take_report(state)
        if payload is not None:
            data[_distributed.PAYLOAD_KEY] = payload


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    for _environment, state in _states_with(Role.MASTER):
        _distributed.absorb_report(state, client_id, data)


def _states_with(role: Role) -> list[tuple[Any, RunState]]:
    """Locust's distributed events carry no environment: find the ones of this role."""
    return [(env, state) for env, state in all_states() if role_of(env) is role]
