"""Wiring into Locust's event bus: options, the ``ai_request`` hook, summary, JSONL.

``install()`` runs once when ``locust_aiapi`` is imported (from a locustfile), the way Locust
plugins register themselves. Listeners log and carry on; they never raise into Locust.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any, NoReturn

import gevent
from locust.event import EventHook

from . import _exporter, _extras, _outputs
from ._distributed import PAYLOAD_KEY, WorkerLedger, absorb_report, take_report, watch_workers
from ._errors import ConfigurationError
from ._jsonl import JsonlWriter
from ._options import AIOptions, add_arguments, ensure_writable
from ._records import RequestRecord
from ._report_types import run_report
from ._summary import LLMSummary
from .render import render_json
from .render.console import render_summary

__all__ = ["AI_REQUEST_EVENT", "ensure_ai_request_hook", "get_summary", "install", "lost_workers"]

AI_REQUEST_EVENT = "ai_request"
"""Name of the hook on ``environment.events``, fired once per AI request with ``record=``."""

log = logging.getLogger("locust_aiapi")
console = logging.getLogger("locust.stats_logger")


@dataclass
class _RunState:
    options: AIOptions
    summary: LLMSummary = field(default_factory=LLMSummary)
    jsonl: JsonlWriter | None = None
    ledger: WorkerLedger | None = None  # master only


_states: weakref.WeakKeyDictionary[Any, _RunState] = weakref.WeakKeyDictionary()
_installed_on: weakref.WeakSet[Any] = weakref.WeakSet()


def install(events: Any) -> None:
    """Register the plugin's listeners on a Locust ``Events`` object (idempotent)."""
    if events in _installed_on:
        return
    _installed_on.add(events)
    _extras.install(events)  # first: its test_stop must run before the summary is written
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
    events.report_to_master.add_listener(_on_report_to_master)
    events.worker_report.add_listener(_on_worker_report)


def ensure_ai_request_hook(environment: Any) -> EventHook:
    """The ``ai_request`` hook of this environment, created (and listened to) on first use."""
    hook: EventHook | None = getattr(environment.events, AI_REQUEST_EVENT, None)
    if hook is None:
        hook = EventHook()  # type: ignore[no-untyped-call]
        setattr(environment.events, AI_REQUEST_EVENT, hook)
    if environment not in _states:
        _states[environment] = _RunState(AIOptions.from_parsed(environment.parsed_options))
        hook.add_listener(lambda record, **_: _on_ai_request(environment, record))  # type: ignore[no-untyped-call]
    return hook


def get_summary(environment: Any) -> LLMSummary:
    """The LLM summary being aggregated for ``environment`` (empty before the first request).

    On the master it is the merge of every worker's reports; on a worker, what it has not
    reported yet.
    """
    ensure_ai_request_hook(environment)
    return _states[environment].summary


def lost_workers(environment: Any) -> int:
    """How many workers the master has seen go missing during this run (0 elsewhere)."""
    state = _states.get(environment)
    return len(state.ledger.lost) if state is not None and state.ledger is not None else 0


def _fatal(message: str) -> NoReturn:
    """A configuration mistake: one clear line and exit code 2, no traceback."""
    sys.stderr.write(f"locust-aiapi: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def _prepare_path(option: str, path: str) -> None:
    try:
        ensure_writable(option, path)
    except ConfigurationError as exc:
        _fatal(str(exc))


def _check_host(environment: Any) -> None:
    parsed = environment.parsed_options
    if parsed is None or not getattr(parsed, "headless", False) or environment.host:
        return
    from ._users import is_ai_user_class  # late import: _users imports this module

    missing = [cls.__name__ for cls in environment.user_classes if is_ai_user_class(cls) and not cls.host]
    if missing:
        _fatal(
            f"no host for {', '.join(missing)}: pass --host URL "
            "(for the mock server: locust-aiapi-mock --port 8000, then --host http://127.0.0.1:8000)"
        )


def _jsonl_path(path: str, environment: Any) -> str:
    """Workers (``--processes``, ``--worker``) each write their own file: ``requests.<pid>.jsonl``."""
    if not _is_worker(environment):
        return path
    root, ext = os.path.splitext(path)
    return f"{root}.{os.getpid()}{ext or '.jsonl'}"


def _on_init(environment: Any, web_ui: Any = None, **_: Any) -> None:
    _check_host(environment)
    hook = ensure_ai_request_hook(environment)
    try:
        _extras.setup(environment, hook)
        if not _is_worker(environment):
            _outputs.check_report_path(environment)
    except ConfigurationError as exc:
        _fatal(str(exc))
    state = _states[environment]
    state.options = AIOptions.from_parsed(environment.parsed_options)
    if _is_master(environment):
        state.ledger = WorkerLedger()
        gevent.spawn(watch_workers, environment.runner, state.ledger, gevent.sleep)
    if state.options.metrics_enabled and not _is_worker(environment):
        _exporter.install(environment, web_ui)
    if state.options.summary_json:
        _prepare_path("--ai-summary-json", state.options.summary_json)
    if state.options.requests_jsonl and not _is_master(environment):  # workers write their own
        path = _jsonl_path(state.options.requests_jsonl, environment)
        _prepare_path("--ai-requests-jsonl", path)
        state.jsonl = JsonlWriter(path)


def _on_ai_request(environment: Any, record: RequestRecord) -> None:
    state = _states.get(environment)
    if state is None:
        return
    try:
        state.summary.add(record)
        if state.jsonl is not None:
            state.jsonl.write(record)
    except Exception:
        log.exception("locust-aiapi could not record a request")


def _on_test_start(environment: Any, **_: Any) -> None:
    state = _states.get(environment)
    if state is not None:
        state.summary = LLMSummary()
        if state.ledger is not None:
            state.ledger = WorkerLedger(lost=state.ledger.lost)


def _is_worker(environment: Any) -> bool:
    from locust.runners import WorkerRunner

    return isinstance(environment.runner, WorkerRunner)


def _is_master(environment: Any) -> bool:
    from locust.runners import MasterRunner

    return isinstance(environment.runner, MasterRunner)


def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    for environment, state in list(_states.items()):
        if _is_worker(environment):
            payload = take_report(state.summary)
            if payload is not None:
                data[PAYLOAD_KEY] = payload


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    for environment, state in list(_states.items()):
        if state.ledger is not None and _is_master(environment):
            absorb_report(state.summary, state.ledger, client_id, data)


def _headless_master(environment: Any) -> bool:
    return _is_master(environment) and bool(getattr(environment.parsed_options, "headless", False))


def _on_test_stop(environment: Any, **_: Any) -> None:
    """Local runs: every record is in once users are stopped. A headless master gets the
    workers' final reports only after test_stop (Locust's quit sends them), so it writes at
    quitting instead."""
    state = _states.get(environment)
    if state is None:
        return
    _flush(state)
    if not _is_worker(environment) and not _headless_master(environment):
        _write_outputs(environment, state)


def _on_quitting(environment: Any, **_: Any) -> None:
    state = _states.get(environment)
    if state is None:
        return
    _flush(state)
    if _headless_master(environment):
        _write_outputs(environment, state)


def _flush(state: _RunState) -> None:
    if state.jsonl is not None:
        try:
            state.jsonl.flush()
        except OSError:
            log.exception("locust-aiapi could not flush the requests JSONL")


def _write_outputs(environment: Any, state: _RunState) -> None:
    try:
        workers = None
        if state.ledger is not None:
            state.ledger.note_missing(set())
            workers = state.ledger.as_dict()
        summary = state.summary.report_dict()
        report = run_report(summary, _outputs.report_sections(environment, state.summary), workers)
        if state.options.summary_json:
            with open(state.options.summary_json, "wb") as file:
                file.write(render_json(report))
        if state.options.print_summary and report["total"]["count"]:
            console.info("\nLLM summary (locust-aiapi)\n%s%s", render_summary(report), _lost_line(state))
        _outputs.finish(environment, report, state.options.print_summary)
    except Exception:
        log.exception("locust-aiapi could not write its summary")


def _lost_line(state: _RunState) -> str:
    if state.ledger is None or not state.ledger.lost:
        return ""
    lost = state.ledger.lost
    return f"\n{len(lost)} worker(s) lost during the run: {', '.join(sorted(lost))} (earlier reports kept)\n"
