"""Real headless Locust runs against servers that misbehave on purpose: the numbers stay right.

Each run is short (2 users, 3 s) and bounded; the server is a scripted loopback server from
``tests/hostile_server.py``. What every case asserts: the exit code, the failure kind, server-side
counts against what was recorded, and no traceback.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile_echo import ECHO_PLACES, key_forms
from tests.hostile_scenarios import scenario
from tests.hostile_server import HostileServer

from ._support import (
    ROOT,
    TEST_LOCUSTFILES,
    LocustRun,
    free_port,
    headless,
    locust_env,
    run_locust,
    terminate,
)

COUNTING = TEST_LOCUSTFILES / "counting_chat.py"
KEY = "sk-live/Ab+cd=Ef0123456789"  # its raw, base64 and URL-encoded forms all differ


def run_against(server: HostileServer, workdir: Path, *extra: str, users: int = 2) -> LocustRun:
    args = headless(server.url, users, "3s", "--stop-timeout", "0", *extra)
    return run_locust(COUNTING, workdir, args, env={"OPENAI_API_KEY": KEY}, timeout_s=60)


def finished(run: LocustRun) -> list[dict[str, Any]]:
    return [record for record in run.records if record["outcome"] != "cancelled"]


def no_traceback(run: LocustRun) -> None:
    assert "Traceback" not in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]


@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[HostileServer]:
    name, params = request.param
    with HostileServer(scenario(name, **params)) as server:
        yield server


@pytest.mark.parametrize(
    "hostile",
    [("usage_numbers", {"completion_tokens": 2**63 - 1}), ("usage_numbers", {"completion_tokens": -5})],
    indirect=True,
    ids=["huge", "negative"],
)
def test_numbers_a_server_sends_are_checked_not_trusted(hostile: HostileServer, tmp_path: Path) -> None:
    run = run_against(hostile, tmp_path, "--ai-threshold", "error_rate<0.5")
    no_traceback(run)
    records = finished(run)
    assert records and all(record["failure_kind"] == "protocol_error" for record in records)
    assert all((record["output_tokens"] or 0) >= 0 for record in records)
    summary = run.summary  # written although every request failed
    assert summary["total"]["failures_by_kind"] == {"protocol_error": len(records)}
    assert summary["thresholds_passed"] is False
    assert run.returncode == 3  # thresholds were still evaluated


@pytest.mark.parametrize("hostile", [("no_usage_empty_deltas", {"tokens": 64, "empty": 25})], indirect=True)
def test_without_usage_every_token_delta_counts(hostile: HostileServer, tmp_path: Path) -> None:
    run = run_against(hostile, tmp_path, "--ai-tokenizer", "off")
    no_traceback(run)
    assert run.returncode == 0, run.stderr[-2000:]
    records = finished(run)
    assert records and all(record["output_tokens"] == 64 for record in records)
    assert all(record["output_tokens_source"] == "counted" for record in records)
    assert all(len(record["chunk_offsets_ms"]) == 64 for record in records)
    assert {served.token_chunks for served in hostile.served if not served.client_closed} == {64}
    total = run.summary["total"]
    answers = [record for record in run.records if record["outcome"] == "success"]
    assert total["output_tokens_by_source"] == {"counted": len(answers)}  # complete answers only
    assert total["prompt_tokens"] is None  # unknown, not 0: nothing reported it
    assert "estimated" in run.stderr + run.stdout


@pytest.mark.parametrize("hostile", [("data_after_done", {"after": 5})], indirect=True)
def test_data_after_done_is_ignored(hostile: HostileServer, tmp_path: Path) -> None:
    run = run_against(hostile, tmp_path)
    no_traceback(run)
    assert run.returncode == 0
    normal = finished(run)
    assert normal and all(record["outcome"] == "success" for record in normal)
    assert len({record["output_tokens"] for record in normal}) == 1  # what came after [DONE] never counted


@pytest.mark.parametrize("hostile", [("embeddings_matrix", {})], indirect=True)
def test_an_embedding_that_is_a_matrix_is_an_invalid_response(hostile: HostileServer, tmp_path: Path) -> None:
    args = headless(hostile.url, 2, "3s", "--stop-timeout", "0")
    run = run_locust(TEST_LOCUSTFILES / "../../locustfiles/embeddings.py", tmp_path, args, timeout_s=60)
    no_traceback(run)
    records = finished(run)
    assert records and all(record["failure_kind"] == "invalid_response" for record in records)
    assert "flat list of numbers" in records[0]["failure_message"]
    assert run.returncode == 1


@pytest.mark.parametrize("place", ECHO_PLACES)
def test_the_key_never_reaches_an_artefact_whatever_the_server_echoes(place: str, tmp_path: Path) -> None:
    with HostileServer(scenario("echo_key", place=place)) as server:
        run = run_against(
            server, tmp_path, "--csv", str(tmp_path / "locust"), "--html", str(tmp_path / "locust.html"),
            "--ai-report-html", str(tmp_path / "report.html"),
        )  # fmt: skip
        assert server.requests and all(request.api_key == KEY for request in server.requests)
    no_traceback(run)
    artefacts = {path.name: path.read_text(errors="replace") for path in tmp_path.iterdir() if path.is_file()}
    expected = {"requests.jsonl", "summary.json", "locust_failures.csv", "locust.html", "report.html"}
    assert expected <= set(artefacts)
    artefacts["console"] = run.stdout + run.stderr
    for form in key_forms(KEY):
        leaked = [name for name, text in artefacts.items() if form in text]
        assert not leaked, (form, leaked)
    assert "[redacted]" in artefacts["requests.jsonl"]


def test_the_key_never_reaches_locusts_web_ui(tmp_path: Path) -> None:
    """Locust's own /stats/requests and /stats/failures/csv show the server's messages: redacted."""
    port = free_port()
    pages: dict[str, str] = {}
    with HostileServer(scenario("echo_key", place="error_object")) as server:
        command = [
            sys.executable, "-m", "locust", "-f", str(COUNTING), "--host", server.url, "-u", "2", "-r", "2",
            "-t", "6s", "--web-host", "127.0.0.1", "--web-port", str(port), "--autostart", "--autoquit", "5",
        ]  # fmt: skip
        env = locust_env({"OPENAI_API_KEY": KEY})
        with open(tmp_path / "locust.log", "w") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(pages) < 2:
                time.sleep(0.5)
                for path in ("/stats/requests", "/stats/failures/csv"):
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                            text = response.read().decode()
                    except OSError:
                        continue
                    if "Incorrect API key" in text:
                        pages[path] = text
        finally:
            terminate(process)
    log_tail = (tmp_path / "locust.log").read_text()[-2000:]
    assert set(pages) == {"/stats/requests", "/stats/failures/csv"}, log_tail
    for form in key_forms(KEY):
        assert not [path for path, text in pages.items() if form in text], form
    assert all("[redacted]" in text for text in pages.values())


@pytest.mark.parametrize("hostile", [("no_usage_empty_deltas", {"tokens": 64, "empty": 25})], indirect=True)
def test_without_usage_the_received_text_is_tokenized_when_a_tokenizer_is_there(
    hostile: HostileServer, tmp_path: Path
) -> None:
    from locust_aiapi._tokenizer import text_token_counter

    counter = text_token_counter()
    assert counter is not None  # the tokenizer extra is a dev dependency
    text = "".join(f" w{i}" for i in range(64) if (i + 1) * 25 // 64 == i * 25 // 64)
    run = run_against(hostile, tmp_path, "--ai-report-html", str(tmp_path / "report.html"))
    no_traceback(run)
    records = finished(run)
    assert records and all(record["output_tokens_source"] == "tokenized" for record in records)
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Token counts</h2>" in page and "o200k_base tokenizer" in page
    assert {record["output_tokens"] for record in records} == {counter(text)}
    assert all(len(record["chunk_offsets_ms"]) == 64 for record in records)  # stamps are per delta
    assert "o200k_base tokenizer" in run.stderr + run.stdout
