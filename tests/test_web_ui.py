"""The web UI in a real browser: Debian's chromium (``make chromium``), driven by Playwright.

A real Locust web UI on loopback, against the real mock server: the form refuses a malformed
threshold and a missing host with a message; a test started from the form fills the LLM tab with the
figures of its summary JSON; Locust's RPS is the mock's real request rate; Stop writes the per-test
outputs; the report downloads; the pages have no console error at desktop and phone sizes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_api

from locust_aiapi._options import OPTIONS
from locust_aiapi._web_form import WORD_JOINER, web_help
from locust_aiapi.mock import MockProcess
from locust_aiapi.render.web_live import cell

from ._support import ROOT, TEST_LOCUSTFILES, free_port, locust_env, mock_stats, terminate

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CHAT_PATH = "/v1/chat/completions"

pytestmark = pytest.mark.timeout(120)  # no skip: `make test` installs chromium and Playwright


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _wait_until_up(url: str, process: subprocess.Popen[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "Locust exited at start"
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"Locust's web UI did not answer at {url}")


@pytest.fixture
def web_locust(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(web UI URL, mock URL, output directory) of a Locust web UI with its outputs in tmp_path."""
    with MockProcess(["--ttft-ms", "100", "--itl-ms", "10", "--output-tokens", "20"]) as mock:
        port = free_port()
        command = [
            sys.executable, "-m", "locust", "-f", str(TEST_LOCUSTFILES / "counting_chat.py"),
            "--web-host", "127.0.0.1", "--web-port", str(port),
            "--ai-summary-json", str(tmp_path / "summary.json"),
            "--ai-report-html", str(tmp_path / "report.html"),
            "--ai-requests-jsonl", str(tmp_path / "requests.jsonl"),
        ]  # fmt: skip
        with open(tmp_path / "locust.log", "w") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=locust_env({"TEST_WAIT_S": "0.1"}), stdout=log,
                stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url + "/", process)
            yield url, mock.url, tmp_path
        finally:
            terminate(process)


def _wait_for_file(path: Path, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert path.exists() and path.stat().st_size, f"{path} was not written"


def _console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


THRESHOLD = 'input[name="Thresholds"]'  # our fields are named by their labels (_web_form.web_key)
NO_SUMMARY = 'input[name="Output: no console summary"]'


def _start(page: Any, host: str, threshold: str) -> None:
    page.fill("input[name=userCount]", "4")
    page.fill("input[name=spawnRate]", "4")
    page.fill("input[name=host]", host)
    if not page.is_visible(THRESHOLD):
        page.get_by_text("Custom parameters").click()
    page.fill(THRESHOLD, threshold)
    page.get_by_role("button", name=re.compile("start", re.I)).click()


def _tick(page: Any, selector: str) -> None:
    """Tick a checkbox of the form (the form may re-render under the first click: bounded retries)."""
    for _ in range(3):
        page.locator(selector).click()
        if page.is_checked(selector):
            return
        time.sleep(0.3)
    raise AssertionError(f"{selector} would not tick")


def _wait_for_row(page: Any, name: str) -> None:
    page.wait_for_function(
        "name => [...document.querySelectorAll('tbody tr td:first-child')].some(td => td.innerText === name)",
        arg=name,
        timeout=10000,
    )


def _llm_row(page: Any, name: str) -> dict[str, str]:
    """The LLM tab's row for ``name``, as {column title: text}."""
    titles = [th.inner_text().strip() for th in page.query_selector_all("thead th")]
    for row in page.query_selector_all("tbody tr"):
        cells = [td.inner_text().strip() for td in row.query_selector_all("td")]
        if cells and cells[0] == name:
            return dict(zip(titles, cells, strict=False))
    raise AssertionError(f"no row {name!r} in the LLM tab: {page.inner_text('tbody')[:500]}")


def _locust_requests(url: str) -> int:
    """Locust's Aggregated request count, once its 2-second cache of /stats/requests has expired."""
    time.sleep(2.5)
    stats = _get_json(url + "/stats/requests")
    return int(next(row for row in stats["stats"] if row["name"] == "Aggregated")["num_requests"])


def _header_rps(page: Any) -> float:
    text = page.inner_text("header")
    match = re.search(r"RPS\s*([\d.]+)", text)
    assert match, text
    return float(match.group(1))


def _check_labels(page: Any) -> None:
    """Labels read as words, grouped by their first word, each text field with its full help below it."""
    labels = [label.replace(WORD_JOINER, "") for label in page.locator("label").all_inner_texts()]
    for words in ("SLO: TTFT (ms)", "SLO: E2E (ms)", "Thresholds", "Workload: output tokens (max_tokens)"):
        assert words in labels, labels
    ours = [label for label in labels if label.startswith(("Output:", "Retries:", "SLO:", "Workload:"))]
    assert ours == sorted(ours) and len(ours) >= 12
    below = page.locator(".MuiTextField-root", has=page.locator(THRESHOLD)).evaluate(
        "field => getComputedStyle(field, '::after').content"
    )
    assert json.loads(below) == web_help(next(o for o in OPTIONS if o.flag == "--ai-threshold"))
    assert "[--ai-no-summary]" in page.inner_text(f"label:has({NO_SUMMARY})")  # a checkbox: in its label


def test_a_test_started_from_the_form_shows_llm_truth(web_locust: tuple[str, str, Path]) -> None:
    url, mock_url, out = web_locust
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=DESKTOP)
        errors = _console_errors(page)
        page.goto(url + "/")

        page.get_by_text("Custom parameters").click()
        _check_labels(page)
        # refused before anything starts, with the reason in the form
        _start(page, "", "ttft_ms:p95<3000")
        page.get_by_text("No host for CountingChatUser").wait_for(timeout=5000)
        _start(page, mock_url, "ttft_ms:p95<<3000")
        page.get_by_text("--ai-threshold: threshold 'ttft_ms:p95<<3000'").wait_for(timeout=5000)
        assert mock_stats(mock_url)["requests"].get(CHAT_PATH, 0) == 0

        _start(page, mock_url, "ttft_ms:p95<60000,error_rate<0.5")
        started_s = time.monotonic()
        page.get_by_role("tab", name="LLM").click()
        _wait_for_row(page, "chat")

        # Locust's RPS is the real rate: each AI call counted once (the mock counts what it served).
        # Locust averages the 10 s that ended 2 s ago: compare once that window is all steady load.
        time.sleep(max(0.0, started_s + 4 - time.monotonic()))
        served_0, t_0 = mock_stats(mock_url)["requests"].get(CHAT_PATH, 0), time.monotonic()
        time.sleep(max(0.0, started_s + 14 - time.monotonic()))
        served_1, t_1 = mock_stats(mock_url)["requests"].get(CHAT_PATH, 0), time.monotonic()
        real_rps = (served_1 - served_0) / (t_1 - t_0)
        assert real_rps > 5
        assert _header_rps(page) == pytest.approx(real_rps, rel=0.25)  # twice the rate if counted twice

        page.screenshot(path=str(out / "llm-tab-running-desktop.png"), full_page=True)

        # the live page draws its charts while the test runs
        live = browser.new_page(viewport=DESKTOP)
        live_errors = _console_errors(live)
        live.goto(url + "/ai/")
        live.locator("#ttft path").first.wait_for(timeout=10000)
        live.locator("#tokens path").first.wait_for(timeout=10000)
        assert "running" in live.inner_text("#status")
        assert re.match(r"client lag p99 [\d.]+ ms, max [\d.]+ ms \((kernel receive stamps|event-loop probe)",
                        live.inner_text("#client-lag"))  # fmt: skip
        assert "client lag p99" in page.inner_text("tbody")  # the LLM tab's last row
        live.screenshot(path=str(out / "live-running-desktop.png"), full_page=True)
        page.get_by_role("button", name=re.compile("stop", re.I)).click()
        summary_path = out / "summary.1.json"  # numbered: the first test started from this web UI
        _wait_for_file(summary_path)
        summary = json.loads(summary_path.read_text())
        chat = summary["requests"]["chat"]

        # every call the mock received is in the summary; Locust has the completed ones (not the ones
        # Stop cancelled in flight), once each
        assert chat["count"] == mock_stats(mock_url)["requests"][CHAT_PATH]
        completed = chat["successes"] + chat["failures"]
        assert _locust_requests(url) == chat["count"] - chat["cancelled"] == completed

        page.reload()
        page.get_by_role("tab", name="LLM").click()
        _wait_for_row(page, "chat")
        row = _llm_row(page, "chat")
        assert row["Requests"] == f"{chat['count']:,}"
        for title, metric in (("TTFT", "ttft_ms"), ("ITL", "itl_ms"), ("E2E", "e2e_ms")):
            assert row[f"{title} p50 / p95 / p99 (ms)"] == cell(chat[metric])
        page.screenshot(path=str(out / "llm-tab-desktop.png"), full_page=True)
        page.get_by_role("tab", name="Download Data").click()
        for title in ("LLM live view (charts, thresholds, cost)", "Download LLM summary JSON"):
            assert page.get_by_role("link", name=title).get_attribute("href", timeout=5000)
        page.get_by_role("tab", name="LLM").click()
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(out / "llm-tab-phone.png"), full_page=True)

        live.locator("#thresholds li").first.wait_for(timeout=10000)
        live.click("#options-box summary")
        threshold_row = live.inner_text("#options tr[data-flag='--ai-threshold']")
        assert "ttft_ms:p95<60000, error_rate<0.5" in threshold_row  # the value in effect
        assert "Pass/fail threshold, repeatable" in threshold_row  # and the full help
        assert live.inner_text("#options tr[data-flag='--ai-no-summary'] td[data-title=Value]") == "false"
        verdicts = live.inner_text("#thresholds")
        assert "PASS ttft_ms:p95<60000" in verdicts and "PASS error_rate<0.5" in verdicts
        assert live.inner_text("#rows tr[data-name=chat] td[data-key=ttft]") == cell(chat["ttft_ms"])
        with live.expect_download() as download:
            live.get_by_role("link", name="HTML report").click()
        saved = out / "downloaded-report.html"
        download.value.save_as(saved)
        assert "<html" in saved.read_text()[:500].lower() and "chat" in saved.read_text()
        live.screenshot(path=str(out / "live-desktop.png"), full_page=True)
        live.set_viewport_size(PHONE)
        live.screenshot(path=str(out / "live-phone.png"), full_page=True)

        # the next test's form starts from what this one used
        page.set_viewport_size(DESKTOP)
        page.get_by_role("button", name=re.compile("new", re.I)).click()
        if not page.is_visible(THRESHOLD):
            page.get_by_text("Custom parameters").click()
        assert page.input_value(THRESHOLD) == "ttft_ms:p95<60000,error_rate<0.5"

        # a second test: its own numbered files, and "no summary" typed in the form applies
        _tick(page, NO_SUMMARY)
        page.get_by_role("button", name=re.compile("start", re.I)).click()
        _wait_for_row(page, "chat")
        time.sleep(2)
        page.get_by_role("button", name=re.compile("stop", re.I)).click()
        _wait_for_file(out / "summary.2.json")
        browser.close()
    assert errors == [] and live_errors == []
    assert json.loads((out / "summary.1.json").read_text()) == summary  # not overwritten
    second = json.loads((out / "summary.2.json").read_text())["requests"]["chat"]
    assert second["count"] == len((out / "requests.2.jsonl").read_text().splitlines()) > 0
    assert chat["count"] == len((out / "requests.1.jsonl").read_text().splitlines())
    assert (out / "report.1.html").stat().st_size > 1000 and (out / "report.2.html").stat().st_size > 1000
    log = (out / "locust.log").read_text()
    assert log.count("LLM summary (locust-aiapi)") == 1, log[-3000:]  # the second test had --ai-no-summary
