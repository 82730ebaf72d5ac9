"""A wrong configuration stops the run at start: one clear line, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from locust_aiapi import ConfigurationError
from locust_aiapi._startup import check_host

from ._support import TEST_LOCUSTFILES, run_locust

COUNTING = TEST_LOCUSTFILES / "counting_chat.py"


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1:8000", "has no scheme: write http://127.0.0.1:8000"),
        ("ftp://127.0.0.1/v1", "only http:// and https:// are supported"),
        ("http://[::1", "is not a valid URL"),
        ("http://127.0.0.1:port", "is not a valid URL"),
        ("http:///v1", "has no host name"),
    ],
)
def test_a_host_that_cannot_work_is_refused(host: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_host(host)
    assert message in str(caught.value)


def test_good_hosts_pass() -> None:
    for host in (
        "http://127.0.0.1:8000",
        "https://api.openai.com/v1",
        "http://[::1]:8000",
        "http://localhost",
    ):
        check_host(host)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "ftp://127.0.0.1/v1", "http://[::1"])
def test_locust_stops_at_start_on_a_bad_host(host: str, tmp_path: Path) -> None:
    args = ["--headless", "--host", host, "-u", "1", "-t", "1s"]
    run = run_locust(COUNTING, tmp_path, args, with_reports=False)
    assert run.returncode == 2
    assert one_error_line(run.stderr).startswith("locust-aiapi: error: --host")


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e309"])
def test_non_finite_or_negative_option_values_are_refused(value: str, tmp_path: Path) -> None:
    args = ["--headless", "--host", "http://127.0.0.1:9", "-u", "1", "-t", "1s", "--ai-arrival-rate", value]
    run = run_locust(COUNTING, tmp_path, args, with_reports=False)
    assert run.returncode == 2
    assert "--ai-arrival-rate" in one_error_line(run.stderr)


def test_a_goodput_threshold_without_an_slo_is_refused_at_start(tmp_path: Path) -> None:
    """It could only ever read "no data" at the end of the run."""
    args = [
        "--headless",
        "--host",
        "http://127.0.0.1:9",
        "-u",
        "1",
        "-t",
        "1s",
        "--ai-threshold",
        "goodput>0.9",
    ]
    run = run_locust(COUNTING, tmp_path, args, with_reports=False)
    assert run.returncode == 2
    line = one_error_line(run.stderr)
    assert "--ai-threshold goodput>0.9: goodput is the share" in line and "--ai-slo-ttft-ms" in line


def test_a_goodput_threshold_with_an_slo_is_accepted() -> None:
    from types import SimpleNamespace

    from locust_aiapi._options import AIOptions

    options = AIOptions.from_parsed(SimpleNamespace(ai_threshold=["goodput>0.9"], ai_slo_e2e_ms="2000"))
    assert options.thresholds == ("goodput>0.9",) and options.slo_e2e_ms == 2000.0
    with pytest.raises(ConfigurationError, match="goodput is the share"):
        AIOptions.from_parsed(SimpleNamespace(ai_threshold=["ttft_ms:p95<1", "chat:goodput>=0.5"]))
