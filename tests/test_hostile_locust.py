"""Real headless Locust runs (5 users) against servers that misbehave on purpose (issue 9): each ends on
time with exit code 1, every request is a failure of the expected kind, nothing crashes, and the Locust
process's peak RSS stays under 150 MB. Before these bounds: 4 GB (endless headers), 0.9 GB (200 MB error
body), a run that never saw a failure (keep-alive comments), other users frozen by one flood."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests._support import ROOT, TEST_LOCUSTFILES, LocustRun, headless, locust_env
from tests.hostile_process import served_by_child
from tests.hostile_scenarios import scenario
from tests.hostile_server import Conn, HostileServer, ReceivedRequest
from tests.hostile_wire import head
from tests.rss import MeasuredRun, run_measuring_rss

LOCUSTFILE = TEST_LOCUSTFILES / "hostile_chat.py"
MAX_RSS_MIB = 150.0


def measured_locust(
    workdir: Path, host: str, run_time: str, *extra: str, env: dict[str, str] | None = None, users: int = 5
) -> tuple[MeasuredRun, LocustRun, float]:
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *headless(host, users, run_time, *extra),
        "--ai-requests-jsonl", str(workdir / "requests.jsonl"),
        "--ai-summary-json", str(workdir / "summary.json"),
    ]  # fmt: skip
    began = time.monotonic()
    run = run_measuring_rss(command, timeout_s=90, cwd=ROOT, env=locust_env(env))
    elapsed_s = time.monotonic() - began
    return run, LocustRun(run.returncode, run.stdout, run.stderr, workdir), elapsed_s


def assert_failed_cleanly(run: MeasuredRun, locust: LocustRun, kind: str) -> list[dict[str, Any]]:
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.peak_rss_mib < MAX_RSS_MIB, run.peak_rss_mib
    records = locust.records
    finished = [r for r in records if r["outcome"] != "cancelled"]
    assert finished and Counter(r["failure_kind"] for r in finished) == {kind: len(finished)}
    return finished


def sized_body(size: int) -> Any:
    def run(request: ReceivedRequest, conn: Conn) -> None:
        conn.write(head(200, [("Content-Type", "application/json"), ("Content-Length", str(size))]))
        for _ in range(size // 65536):
            conn.write(b" " * 65536)

    return run


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("endless_headers", "protocol_error", "more than 100 response headers"),
        ("huge_error_body", "server_error", "HTTP 500: "),
    ],
)
def test_a_run_against_a_server_that_sends_too_much_fails_each_request_in_bounded_memory(
    tmp_path: Path, name: str, kind: str, message: str
) -> None:
    with HostileServer(scenario(name)) as server:
        run, locust, _ = measured_locust(tmp_path, server.url, "3s")
        served = server.served
    finished = assert_failed_cleanly(run, locust, kind)
    assert all(r["failure_message"].startswith(message) for r in finished)
    assert len(finished) <= len(served) <= len(locust.records)  # one wire request per record, no retry
    assert all(s.bytes_written < 40_000_000 for s in served)


def test_a_run_against_a_huge_non_streamed_body_is_response_too_large(tmp_path: Path) -> None:
    with HostileServer(sized_body(300 * 1024 * 1024)) as server:
        run, locust, _ = measured_locust(tmp_path, server.url, "3s", "--ai-max-body-mib", "8",
                                         env={"TEST_STREAM": "0"})  # fmt: skip
        served = server.served
    finished = assert_failed_cleanly(run, locust, "response_too_large")
    assert {r["failure_message"] for r in finished} == {f"the response body exceeds {8 * 1024 * 1024} bytes"}
    assert len(finished) <= len(served) and all(s.bytes_written < 40_000_000 for s in served)


def test_keepalive_forever_is_a_timeout_that_locust_sees(tmp_path: Path) -> None:
    with HostileServer(scenario("keepalive_forever", interval_s=0.1)) as server:
        run, locust, _ = measured_locust(tmp_path, server.url, "4s", "--ai-ttft-timeout", "1")
        served = server.served
    finished = assert_failed_cleanly(run, locust, "timeout")
    assert {r["failure_message"] for r in finished} == {"no token within 1 s"}
    assert all(900 < r["e2e_ms"] < 2500 for r in finished)
    assert len(finished) >= 10 and len(finished) <= len(served) <= len(locust.records)
    assert locust.summary  # the summary was written


def test_one_flooding_user_does_not_freeze_the_others(tmp_path: Path) -> None:
    flood_bytes = 2_000_000_000  # bounds the run even when the client cannot keep up
    with served_by_child("flood", max_bytes=flood_bytes) as flooding, HostileServer(scenario("normal")) as ok:
        run, locust, elapsed_s = measured_locust(
            tmp_path, ok.url, "5s", "--ai-request-timeout", "1.5", env={"TEST_FLOOD_HOST": flooding}
        )
    assert run.returncode == 1, run.stderr[-3000:]  # the flood's requests time out
    assert "Traceback" not in run.stderr and run.peak_rss_mib < MAX_RSS_MIB, run.peak_rss_mib
    assert elapsed_s < 5 + 6  # -t 5s ends on time (start-up and shutdown included)
    records = locust.records
    flood = [r for r in records if r["name"] == "flood" and r["outcome"] == "failure"]
    others = [r for r in records if r["name"] == "chat" and r["outcome"] == "success"]
    assert flood and {r["failure_message"] for r in flood} == {"request not complete within 1.5 s"}
    assert max(len(r["chunk_offsets_ms"]) for r in flood) > 10_000  # it did flood
    ttfts = sorted(r["ttft_ms"] for r in others)
    assert len(others) > 100 and ttfts[int(len(ttfts) * 0.99)] < 250.0, ttfts[-5:]


RETRIES = ("--ai-max-retries", "2", "--ai-retry-max-delay", "0.5")


@pytest.mark.parametrize(
    ("name", "params", "extra"),
    [
        ("interim_1xx", {}, ()),
        ("retry_after", {"value": "inf", "times": 5}, RETRIES),
        ("retry_after", {"value": "3600", "times": 5}, RETRIES),
    ],
)
def test_interim_responses_and_a_huge_retry_after_still_give_normal_answers(
    tmp_path: Path, name: str, params: dict[str, Any], extra: tuple[str, ...]
) -> None:
    with HostileServer(scenario(name, **params)) as server:
        run, locust, _ = measured_locust(tmp_path, server.url, "3s", *extra)
        accepted = server.connections_accepted
        served = server.served
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and run.peak_rss_mib < MAX_RSS_MIB
    ok = [r for r in locust.records if r["outcome"] == "success"]
    assert len(ok) > 50 and {r["output_tokens"] for r in ok} == {9}
    assert {r["outcome"] for r in locust.records} <= {"success", "cancelled"}
    assert len(ok) <= len(served)
    if name == "interim_1xx":
        assert accepted == 5  # one keep-alive connection per user: no connection was left dirty
    else:
        retried = [r for r in ok if r["attempts"] > 1]  # each 429 waited at most the 0.5 s cap
        limited = sum(s.notes.get("rate_limited", 0) for s in served)
        assert limited == 5 == sum(r["attempts"] - 1 for r in retried)
        assert all(r["e2e_ms"] < 2000 for r in retried)
