"""Benchmark user: streams back to back and writes when each first token arrived.

The ``ai_request`` hook is the extension point: here it dumps raw monotonic stamps so the
benchmark can compare them with the mock server's own record of when it wrote each token.
"""

from __future__ import annotations

import os
import time
from typing import IO, Any

import gevent
import orjson
from locust import between, events, task

from locust_aiapi import AI_REQUEST_EVENT, AIChatUser, RequestRecord, _rx_stamps

if os.environ.get("BENCH_USER_STAMPS"):  # the benchmark's "user" mode: stamps as if the kernel gave none
    _rx_stamps.KERNEL_STAMPS_AVAILABLE = False  # type: ignore[misc]

_out: dict[str, Any] = {}


class StreamingUser(AIChatUser):
    # think time, so users do not stay in lockstep (real traffic has no synchronised waves)
    wait_time = between(0.0, float(os.environ.get("BENCH_WAIT_MAX_S", "0")))
    max_tokens = None

    @task
    def stream_chat(self) -> None:
        self.chat("Write a short product description.", name="stream")


def _on_ai_request(record: RequestRecord, **_: Any) -> None:
    file: IO[bytes] | None = _out.get("file")
    if file is not None and record.ok:
        row = {
            "request_id": record.request_id,
            "start_s": record.start_s,
            "first_token_s": record.first_token_s,
            "end_s": record.end_s,
            "chunks": len(record.token_chunk_times_s),
            "timestamps": record.timestamps.value,
            "lags_ms": [lag_s * 1000.0 for lag_s in record.client_lags_s],
        }
        file.write(orjson.dumps(row) + b"\n")


def _on_init(environment: Any, **_: Any) -> None:
    path = os.environ.get("BENCH_ARRIVALS")
    if path:
        _out["file"] = open(path, "wb")  # noqa: SIM115 - closed at test_stop
        _out["path"] = path
        getattr(environment.events, AI_REQUEST_EVENT).add_listener(_on_ai_request)


def _on_test_start(**_: Any) -> None:
    if os.environ.get("BENCH_GC_FREEZE"):
        import gc

        gc.collect()
        gc.freeze()
    _out["cpu_start"] = time.process_time()


def _on_test_stop(**_: Any) -> None:
    file = _out.pop("file", None)
    if file is not None:
        file.close()
        cpu = time.process_time() - _out["cpu_start"]
        with open(os.path.splitext(_out["path"])[0] + ".cpu", "w") as cpu_file:
            cpu_file.write(str(cpu))


def _on_spawning_complete(**_: Any) -> None:
    probe = os.environ.get("BENCH_GC_PROBE")
    if probe:  # gc_pauses.py: how long a full collection takes in the steady state (after our freeze)
        gevent.spawn_later(float(os.environ.get("BENCH_GC_PROBE_AFTER_S", "3")), _time_full_collection, probe)


def _time_full_collection(path: str) -> None:
    import gc

    tracked = len(gc.get_objects())
    began = time.perf_counter()
    gc.collect()
    pause_ms = (time.perf_counter() - began) * 1000.0
    with open(path, "w") as out:
        out.write(
            orjson.dumps({"pause_ms": pause_ms, "tracked": tracked, "frozen": gc.get_freeze_count()}).decode()
        )


events.spawning_complete.add_listener(_on_spawning_complete)  # type: ignore[no-untyped-call]
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
