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

import orjson
from locust.event import EventHook

from . import _exporter
from ._jsonl import JsonlWriter
from ._options import AIOptions, add_arguments
from ._records import RequestRecord
from ._summary import LLMSummary

__all__ = ["AI_REQUEST_EVENT", "ensure_ai_request_hook", "get_summary", "install"]

AI_REQUEST_EVENT = "ai_request"
"""Name of the hook on ``environment.events``, fired once per AI request with ``record=``."""

log = logging.getLogger("locust_aiapi")
console = logging.getLogger("locust.stats_logger")


@dataclass
class _RunState:
    options: AIOptions
    summary: LLMSummary = field(default_factory=LLMSummary)
    jsonl: JsonlWriter | None = None


_states: weakref.WeakKeyDictionary[Any, _RunState] = weakref.WeakKeyDictionary()
_installed_on: weakref.WeakSet[Any] = weakref.WeakSet()


def install(events: Any) -> None:
    """Register the plugin's listeners on a Locust ``Events`` object (idempotent)."""
    if events in _installed_on:
        return
    _installed_on.add(events)
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)


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
    """The LLM summary being aggregated for ``environment`` (empty before the first request)."""
    ensure_ai_request_hook(environment)
    return _states[environment].summary


def _fatal(message: str) -> NoReturn:
    """A configuration mistake: one clear line and exit code 2, no traceback."""
    sys.stderr.write(f"locust-aiapi: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def _prepare_path(option: str, path: str) -> None:
    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        _fatal(f"cannot write {option} {path!r}: {exc.strerror or exc}")


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
    ensure_ai_request_hook(environment)
    state = _states[environment]
    state.options = AIOptions.from_parsed(environment.parsed_options)
    if state.options.metrics_enabled and not _is_worker(environment):
        _exporter.install(environment, web_ui)
    if state.options.summary_json:
        _prepare_path("--ai-summary-json", state.options.summary_json)
    if state.options.requests_jsonl:
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


def _is_worker(environment: Any) -> bool:
    from locust.runners import WorkerRunner

    return isinstance(environment.runner, WorkerRunner)


def _on_test_stop(environment: Any, **_: Any) -> None:
    state = _states.get(environment)
    if state is None:
        return
    try:
        if state.jsonl is not None:
            state.jsonl.flush()
        if _is_worker(environment):
            return
        if state.options.summary_json:
            with open(state.options.summary_json, "wb") as file:
                file.write(orjson.dumps(state.summary.report_dict(), option=orjson.OPT_INDENT_2))
        if state.options.print_summary and state.summary.total.requests:
            console.info("\nLLM summary (locust-aiapi)\n%s", state.summary.render_table())
    except Exception:
        log.exception("locust-aiapi could not write its summary")


def _on_quitting(environment: Any, **_: Any) -> None:
    state = _states.get(environment)
    if state is not None and state.jsonl is not None:
        try:
            state.jsonl.flush()
        except OSError:
            log.exception("locust-aiapi could not flush the requests JSONL")
