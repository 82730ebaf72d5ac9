"""Benchmark users for ``benchmarks/worker_scale.py``: each user holds ONE long stream open, then idles.

``ScaleUser`` is ours (an ``AIChatUser``); ``BareStreamUser`` is Locust's own ``FastHttpUser`` reading
the same stream line by line, the baseline for what Locust itself costs per user. At test start this
process writes its resident memory (before any user exists); at test stop, the chunks and failures it
saw and its CPU time, as JSON to ``$BENCH_SCALE_OUT``.
"""

from __future__ import annotations

import os
import resource
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import orjson
from locust import FastHttpUser, constant, events, task

from locust_aiapi import AI_REQUEST_EVENT, AIChatUser, RequestRecord

IDLE_S = 3600.0  # after its one stream a user waits until the run ends (stopping kills the wait)
_seen: dict[str, Any] = {"chunks": 0, "ok": 0, "errors": Counter(), "first_s": None, "last_s": None}


def _resident_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def _count_chunks(times_s: list[float] | tuple[float, ...]) -> None:
    _seen["chunks"] += len(times_s)
    if times_s:
        first, last = _seen["first_s"], _seen["last_s"]
        _seen["first_s"] = times_s[0] if first is None else min(first, times_s[0])
        _seen["last_s"] = times_s[-1] if last is None else max(last, times_s[-1])


class ScaleUser(AIChatUser):
    wait_time = constant(IDLE_S)
    max_tokens = None

    @task
    def stream_once(self) -> None:
        self.chat("Write a short product description.", name="stream")


class BareStreamUser(FastHttpUser):
    wait_time = constant(IDLE_S)
    body: ClassVar[dict[str, Any]] = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "Hello"}],
    }

    @task
    def stream_once(self) -> None:
        times_s: list[float] = []
        try:
            for line in self.client.iter_lines("/v1/chat/completions", method="POST", json=self.body):
                if line.startswith("data: {"):
                    times_s.append(time.perf_counter())
        except Exception as exc:  # the baseline counts failures by kind, as ours does
            _seen["errors"][type(exc).__name__] += 1
            return
        _seen["ok"] += 1
        _count_chunks(times_s)


def _on_ai_request(record: RequestRecord, **_: Any) -> None:
    if record.ok:
        _seen["ok"] += 1
    else:
        _seen["errors"][record.failure_kind.value if record.failure_kind else record.outcome.value] += 1
    _count_chunks(record.token_chunk_times_s)


def _on_init(environment: Any, **_: Any) -> None:
    getattr(environment.events, AI_REQUEST_EVENT).add_listener(_on_ai_request)
    path = os.environ.get("BENCH_SCALE_OUT")
    if path:  # opened before any socket: at a too-low open files limit there is none left at the stop
        _seen["out"] = open(path, "wb")  # noqa: SIM115 - closed at test_stop


def _on_test_start(**_: Any) -> None:
    _seen["rss_start_kib"] = _resident_kib()
    _seen["cpu_start_s"], _seen["wall_start_s"] = time.process_time(), time.perf_counter()


def _on_spawning_complete(**_: Any) -> None:
    _seen["spawn_s"] = time.perf_counter() - _seen.get("wall_start_s", 0.0)


def _on_test_stop(**_: Any) -> None:
    out = _seen.pop("out", None)
    if out is not None:
        span_s = (_seen["last_s"] or 0.0) - (_seen["first_s"] or 0.0)
        row = {
            "rss_start_kib": _seen.get("rss_start_kib"),
            "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "cpu_s": time.process_time() - _seen.get("cpu_start_s", 0.0),
            "wall_s": time.perf_counter() - _seen.get("wall_start_s", 0.0),
            "spawn_s": _seen.get("spawn_s"),
            "chunks": _seen["chunks"],
            "chunk_span_s": span_s,
            "ok": _seen["ok"],
            "errors": dict(_seen["errors"]),
        }
        with out:
            out.write(orjson.dumps(row))


events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.spawning_complete.add_listener(_on_spawning_complete)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
