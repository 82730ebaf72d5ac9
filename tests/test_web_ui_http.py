"""The web UI over HTTP, no browser: a master's LLM view is the merge of its workers (a real master
and real workers); with ``--web-login`` nothing of ours answers before Locust's login check."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from locust_aiapi.mock import MockProcess

from ._support import ROOT, TEST_LOCUSTFILES, free_port, locust_env, mock_stats, terminate

LOCUSTFILE = str(TEST_LOCUSTFILES / "counting_chat.py")


def _spawn(args: list[str], log: Path, locustfile: str = LOCUSTFILE, **env: str) -> subprocess.Popen[str]:
    with open(log, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", locustfile, *args], cwd=ROOT, env=locust_env(env),
            stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _post(url: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
    data = urllib.parse.urlencode(form or {}).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def _raw(port: int, method: str, path: str, form: str) -> tuple[int, bytes]:
    """Status and body of one request, redirects not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request(method, path, body=form if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _until(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _chat_requests(live: dict[str, Any]) -> int:
    row = live["report"]["requests"].get("chat")
    return int(row["count"]) if row else 0


@pytest.mark.timeout(90)
def test_a_masters_llm_view_is_the_merge_of_its_workers(tmp_path: Path) -> None:
    web_port, master_port = free_port(), free_port()
    with MockProcess(["--ttft-ms", "50", "--itl-ms", "5", "--output-tokens", "10"]) as mock:
        master = _spawn(
            [
                "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
                "--web-host", "127.0.0.1", "--web-port", str(web_port),
                "--ai-summary-json", str(tmp_path / "summary.json"),
            ],
            tmp_path / "master.log",
        )  # fmt: skip
        worker_args = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
        workers = [_spawn(worker_args, tmp_path / f"worker{i}.log") for i in range(2)]
        url = f"http://127.0.0.1:{web_port}"
        try:
            _until(lambda: _get(url + "/stats/requests")["worker_count"] == 2, 30, "2 workers")
            refused = _post(url + "/swarm", {"user_count": "4", "spawn_rate": "4", "host": ""})
            assert not refused["success"] and refused["message"].startswith("No host for CountingChatUser")
            started = _post(url + "/swarm", {"user_count": "4", "spawn_rate": "4", "host": mock.url})
            assert started["success"], started
            _until(lambda: _chat_requests(_get(url + "/ai/live.json")) >= 40, 30, "40 chat requests")
            _post(url + "/stop")
            summary_path = tmp_path / "summary.1.json"
            _until(lambda: summary_path.exists() and summary_path.stat().st_size, 20, "summary.1.json")
            live = _get(url + "/ai/live.json")
        finally:
            for process in [master, *workers]:
                terminate(process)
        served = mock_stats(mock.url)["requests"]["/v1/chat/completions"]
    assert live["running"] is False and live["test"] == 1
    assert _chat_requests(live) == served  # both workers' requests, each once
    written = json.loads(summary_path.read_text())["requests"]["chat"]["count"]
    assert written == served
    by_worker = live["report"]["workers"]["requests_by_worker"]
    assert len(by_worker) == 2 and all(n > 0 for n in by_worker.values())
    assert sum(by_worker.values()) == served
    assert live["rows"][0]["name"] == "chat" and live["rows"][0]["requests"] == f"{served:,}"


@pytest.mark.timeout(60)
def test_with_web_login_the_form_check_and_the_llm_pages_wait_for_the_login(tmp_path: Path) -> None:
    port, password = free_port(), "s3cret-web"
    locustfile = str(TEST_LOCUSTFILES / "metrics_login.py")
    args = ["--web-login", "--web-host", "127.0.0.1", "--web-port", str(port)]
    locust = _spawn(args, tmp_path / "locust.log", locustfile, TEST_METRICS_PASSWORD=password)
    url = f"http://127.0.0.1:{port}"
    basic = {"Authorization": "Basic " + base64.b64encode(f"scraper:{password}".encode()).decode()}
    try:
        _until(lambda: urllib.request.urlopen(url + "/login", timeout=1).status == 200, 30, "the web UI")
        for method, path in (("GET", "/ai/"), ("GET", "/ai/live.json"), ("POST", "/swarm")):
            status, body = _raw(port, method, path, "user_count=1&spawn_rate=1&host=")
            assert status in (302, 401) and b"No host" not in body and b"LLM" not in body, (path, status)
        answer = _post(url + "/swarm", {"user_count": "1", "spawn_rate": "1", "host": ""}, basic)
        assert not answer["success"] and answer["message"].startswith("No host for IdleChatUser")
    finally:
        terminate(locust)


@pytest.mark.timeout(90)
def test_workers_started_from_the_web_ui_take_disjoint_shares_of_a_prompt_list(tmp_path: Path) -> None:
    """No --expect-workers (the web UI's way): the master tells each worker its place when the test
    starts, so three workers each send their own third of a sequential dataset, none another's."""
    names = [f"p{i}" for i in range(6)]
    dataset = tmp_path / "prompts.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": f"question {n}", "name": n}) + "\n" for n in names))
    web_port, master_port = free_port(), free_port()
    locustfile = str(TEST_LOCUSTFILES / "dataset_chat.py")
    options = ["--ai-dataset", str(dataset), "--ai-requests-jsonl", str(tmp_path / "requests.jsonl")]
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "3"]) as mock:
        master = _spawn(
            [
                "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
                "--web-host", "127.0.0.1", "--web-port", str(web_port), "--ai-dataset", str(dataset),
            ],
            tmp_path / "master.log", locustfile,
        )  # fmt: skip
        worker_args = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port), *options]
        workers = [_spawn(worker_args, tmp_path / f"worker{i}.log", locustfile) for i in range(3)]
        url = f"http://127.0.0.1:{web_port}"
        try:
            _until(lambda: _get(url + "/stats/requests")["worker_count"] == 3, 30, "3 workers")
            started = _post(url + "/swarm", {"user_count": "3", "spawn_rate": "3", "host": mock.url})
            assert started["success"], started
            live = lambda: _get(url + "/ai/live.json")["report"]["total"]["count"]  # noqa: E731
            _until(lambda: live() >= 60, 30, "60 requests")
            _post(url + "/stop")
            time.sleep(1.5)  # the workers flush their JSONL every second
        finally:
            for process in [master, *workers]:
                terminate(process)
    sent = [
        {json.loads(line)["name"] for line in path.read_text().splitlines() if line}
        for path in sorted(tmp_path.glob("requests.*.jsonl"))
    ]
    assert len(sent) == 3 and all(len(names_sent) == 2 for names_sent in sent), sent
    assert set().union(*sent) == set(names)  # each prompt sent by one worker only
