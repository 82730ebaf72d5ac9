"""The HTML report: charts and escaping, the report of a real run, and the page in headless Chromium."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from locust_aiapi import FailureKind, RequestKind, RequestRecord
from locust_aiapi._pricing import DEFAULT_PRICES, cost_report, load_prices
from locust_aiapi._timeseries import TimeSeries
from locust_aiapi.mock import MockProcess
from locust_aiapi.render.charts import Series, bar_chart, line_chart, nice_ticks

from ._support import ROOT, run_locust

SWEEP = ROOT / "locustfiles" / "sweep.py"
PHONE = (412, 915)


# --- units ----------------------------------------------------------------------------------------


def test_nice_ticks() -> None:
    assert nice_ticks(0.0) == [0.0, 1.0]
    assert nice_ticks(95.0) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert nice_ticks(1234.0) == [0.0, 500.0, 1000.0, 1500.0]


def test_charts_are_inline_svg_with_gaps_and_legends() -> None:
    svg = line_chart(
        "TTFT <ms>", [0.0, 2.0, 4.0, 6.0], [Series("p50", [1.0, None, 3.0, 4.0]), Series("p95", [2.0] * 4)]
    )
    assert svg.count("<svg") == 1 and "TTFT &lt;ms&gt;" in svg and "<ms>" not in svg
    assert svg.count('<circle class="dot s0"') == 1  # the lone point before the gap
    assert svg.count('<polyline class="line s0"') == 1 and svg.count('<polyline class="line s1"') == 1
    assert '<li><span class="sw s1"></span>p95</li>' in svg
    bars = bar_chart(
        "Failures", [0.0, 2.0], [Series("rate_limited", [1.0, 0.0]), Series("timeout", [2.0, 1.0])]
    )
    assert bars.count("<rect") == 3
    assert "none" in bar_chart("Failures", [0.0], [])
    assert "no data" in line_chart("Users", [], [Series("users", [])])


def test_default_prices_are_the_list_prices_and_the_articles_output_prices() -> None:
    listed = {"gpt-4.1": (2.0, 8.0), "claude-sonnet-4-5": (3.0, 15.0), "gemini-2.5-flash": (0.3, 2.5)}
    listed["deepseek-v3.2"] = (0.28, 0.42)
    for model, (input_usd, output_usd) in listed.items():
        price = DEFAULT_PRICES[model]
        assert (price.input_usd_per_mtok, price.output_usd_per_mtok) == (input_usd, output_usd), model
    for alias, model in [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("deepseek-chat", "deepseek-v3.2"),
    ]:
        assert DEFAULT_PRICES[alias] == DEFAULT_PRICES[model]


def test_pricing_file_adds_and_overrides_models(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"DeepSeek-V3.2": {"input": 0.28, "output": 0.42}, "openai/my-model": 1.5}))
    prices = load_prices(str(path))
    assert prices["deepseek-v3.2"].input_usd_per_mtok == 0.28
    assert prices["my-model"].output_usd_per_mtok == 1.5
    assert prices["gpt-4.1"] == DEFAULT_PRICES["gpt-4.1"]
    for bad, message in [("[]", "JSON object"), ("{", "not valid JSON"), ('{"m": {"in": 1}}', "expected")]:
        path.write_text(bad)
        with pytest.raises(ValueError, match=message):
            load_prices(str(path))


# --- a real run -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sweep example, quick: 2, 4, 6 users for 2 s each, with faults, thresholds, SLO and prices."""
    workdir = tmp_path_factory.mktemp("report")
    (workdir / "prices.json").write_text(json.dumps({"deepseek-v3.2": {"input": 0.28, "output": 0.42}}))
    mock_args = [
        "--ttft-ms",
        "40",
        "--itl-ms",
        "3",
        "--output-tokens",
        "12",
        "--rate-429",
        "0.05",
        "--seed",
        "2",
    ]
    args = [
        "--headless", "--ai-no-metrics", "--stop-timeout", "2",
        "--ai-steps", "2,4,6", "--ai-step-duration", "2s",
        "--ai-threshold", "ttft_ms:p95<3000", "--ai-threshold", "error_rate<0.5",
        "--ai-slo-ttft-ms", "1000", "--ai-pricing", str(workdir / "prices.json"),
        "--ai-report-html", str(workdir / "out" / "report.html"),
    ]  # fmt: skip
    with MockProcess(mock_args) as mock:
        run = run_locust(
            SWEEP, workdir, [*args, "--host", mock.url], env={"AI_MODEL": "deepseek-v3.2"}, timeout_s=60
        )
    assert run.returncode == 0, run.stderr[-3000:]
    html = (workdir / "out" / "report.html").read_text(encoding="utf-8")
    return {"html": html, "summary": run.summary, "path": workdir / "out" / "report.html", "workdir": workdir}


def test_the_report_of_a_real_run_shows_the_llm_sections(sweep_run: dict[str, Any]) -> None:
    html, summary = sweep_run["html"], sweep_run["summary"]
    for text in [
        "LLM load test report", "Thresholds passed: all 2", "ttft_ms:p95&lt;3000", "Per phase",
        "Time to first token (ms)", "Time to first content (ms)", "Inter-token latency (ms)",
        "Time per output token (ms)", "End-to-end latency (ms)", "Over time", "TTFT (ms)", "Output tokens/s",
        "Requests/s (completed)", "Users", "Failures by kind", "rate_limited", "Estimated cost",
        "deepseek-v3.2", "SLO per request: ttft_ms ≤ 1,000", "Goodput", "shape: Sweep",
        "Against concurrency", "Requests/s vs users", "Output tokens/s vs users", "TTFT (ms) vs users",
        "ITL (ms) vs users", "E2E latency (ms)", "ITL (ms)", "Run configuration",
        '<td data-label="Value">ttft_ms ≤ 1000</td>', '<td data-label="Value">deepseek-v3.2</td>',
        "2 users (2 s, spawn", '<td data-label="Value">ttft_ms:p95&lt;3000, error_rate&lt;0.5</td>',
    ]:  # fmt: skip
        assert text in html, text
    for phase in summary["phases"]:
        assert f">{phase['label']}</td>" in html
    assert [p["label"] for p in summary["phases"]] == ["2 users", "4 users", "6 users"]
    assert f"{summary['total']['count']:,}" in html
    assert html.count("<svg") == 11  # 4 against concurrency, 7 over time (one name: no per-name charts)
    assert summary["total"]["failures_by_kind"].get("rate_limited", 0) > 0


def figure(html: str, caption: str) -> str:
    pattern = rf'<figure class="card"><figcaption>{re.escape(caption)}</figcaption>.*?</figure>'
    found = re.search(pattern, html)
    assert found, caption
    return found.group(0)


def test_a_sweep_is_charted_against_concurrency_one_point_per_step(sweep_run: dict[str, Any]) -> None:
    html, phases = sweep_run["html"], sweep_run["summary"]["phases"]
    for caption in ["Requests/s vs users", "TTFT (ms) vs users", "ITL (ms) vs users"]:
        chart = figure(html, caption)
        xs = re.findall(r'class="xlab"[^>]*>([^<]*)<', chart)
        assert xs == ["2", "4", "6"], caption  # x = the phases' target users
        points = re.search(r'<polyline class="line s0" points="([^"]*)"', chart)
        assert points and len(points.group(1).split()) == len(phases) == 3, caption
    # the throughput line follows the phases' own figures: more users, more requests per second
    rates = [(p["count"] - p["cancelled"]) / p["duration_s"] for p in phases]
    assert rates[0] < rates[2]
    chart = figure(html, "Requests/s vs users")
    line = re.search(r'points="([^"]*)"', chart)
    assert line
    ys = [float(xy.split(",")[1]) for xy in line.group(1).split()]
    assert ys[0] > ys[2]  # SVG y grows downwards: the 6-user point is higher


def test_the_report_is_self_contained(sweep_run: dict[str, Any]) -> None:
    html = sweep_run["html"]
    assert "<script" not in html
    assert not re.search(r"\b(src|href)\s*=", html)
    assert "url(" not in html and "@import" not in html
    external = set(re.findall(r"https?://[^\s\"'<]+", html)) - {"http://www.w3.org/2000/svg"}
    assert all(url.startswith("http://127.0.0.1:") for url in external), external  # only the tested host


def test_the_json_summary_carries_the_same_data(sweep_run: dict[str, Any]) -> None:
    summary = sweep_run["summary"]
    assert summary["thresholds_passed"] is True
    assert summary["goodput"]["slo"] == {"ttft_ms": 1000.0}
    points = summary["timeseries"]["points"]
    assert summary["timeseries"]["interval_s"] == 2.0 and len(points) >= 3
    completed = summary["total"]["count"] - summary["total"]["cancelled"]
    assert sum(p["requests"] for p in points) == completed
    cost = summary["cost"]["models"]["deepseek-v3.2"]
    # the pricing file names no cached_input price: the mock's prefix-cache hits cost the input price
    assert cost["cached_input_usd_per_mtok"] == 0.28 and cost["cached_prompt_tokens"] <= cost["prompt_tokens"]
    expected = (cost["prompt_tokens"] * 0.28 + cost["output_tokens"] * 0.42) / 1e6
    assert cost["cost_usd"] == pytest.approx(expected) and summary["cost"]["total_usd"] == pytest.approx(
        expected
    )
    assert cost["output_tokens"] == summary["total"]["output_tokens"]


# --- the page in a browser ------------------------------------------------------------------------


def chromium(page: Path, screenshot: Path, profile: Path) -> str:
    """Open ``page`` headless at phone size, save a screenshot; returns Chromium's log (stdout + stderr)."""
    command = [
        shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        f"--screenshot={screenshot}", f"--window-size={PHONE[0]},{PHONE[1]}", page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_report_opens_in_chromium_at_phone_size_without_console_errors(
    sweep_run: dict[str, Any], tmp_path: Path
) -> None:
    # a control page first: this is how a console error shows in Chromium's log
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><p>x</p><script>console.error("control-error")</script>')
    log = chromium(control, tmp_path / "control.png", tmp_path / "profile-control")
    assert re.search(r":CONSOLE[:(]\d+\)?\] \"control-error\"", log), log[-2000:]

    screenshot = sweep_run["workdir"] / "report-phone.png"
    log = chromium(sweep_run["path"], screenshot, tmp_path / "profile")
    assert ":CONSOLE" not in log, [line for line in log.splitlines() if ":CONSOLE" in line]
    assert png_size(screenshot) == PHONE
    assert screenshot.stat().st_size > 20_000  # a page, not a blank screen


# --- the time series behind the charts ------------------------------------------------------------


def timed(end_epoch_s: float, ok: bool = True, ttft_s: float = 0.1) -> RequestRecord:
    start = end_epoch_s - 0.5
    rec = RequestRecord(
        name="chat", kind=RequestKind.CHAT, model="m", streamed=True, start_epoch_s=start, start_s=10.0,
        end_s=10.5, first_token_s=10.0 + ttft_s, output_tokens=10,
    )  # fmt: skip
    if not ok:
        rec.fail(FailureKind.RATE_LIMITED, "429")
    return rec


def test_time_series_buckets_merge_exactly_across_workers() -> None:
    records = [timed(1000.5 + 0.25 * i, ok=i % 7 != 0, ttft_s=0.05 + 0.01 * (i % 5)) for i in range(40)]
    whole, master = TimeSeries(), TimeSeries()
    workers = [TimeSeries(), TimeSeries()]
    for i, rec in enumerate(records):
        whole.add(rec)
        workers[i % 2].add(rec)
        if i % 9 == 0:
            for worker in workers:
                payload = worker.take_report()
                if payload is not None:
                    master.absorb(json.loads(json.dumps(payload)))
    for worker in workers:
        payload = worker.take_report()
        if payload is not None:
            master.absorb(json.loads(json.dumps(payload)))
    master.sample_users(1001.0, 4)
    merged, expected = master.points(), whole.points()
    assert [p["users"] for p in merged["points"]][:1] == [4]
    for got, want in zip(merged["points"], expected["points"], strict=True):
        assert {k: v for k, v in got.items() if k != "users"} == {
            k: v for k, v in want.items() if k != "users"
        }
    points = expected["points"]
    assert sum(p["requests"] for p in points) == 40
    assert sum(sum(p["failures_by_kind"].values()) for p in points) == 6
    # requests end from 1000.5 to 1010.25: the first bucket [1000, 1002) is covered from 1000.0 (first start)
    assert points[0]["rps"] == pytest.approx(points[0]["requests"] / 2.0)
    # [1010, 1012) is covered to 1010.25 only: that sliver joins [1008, 1010), the point covers 2.25 s
    assert points[-1]["epoch_s"] == 1008.0 and points[-1]["covered_s"] == pytest.approx(2.25)
    assert points[-1]["rps"] == pytest.approx(points[-1]["requests"] / 2.25)
    with pytest.raises(ValueError):
        master.absorb({"buckets": {"x": {}}})


def test_long_runs_are_shown_with_wider_buckets() -> None:
    series = TimeSeries()
    for i in range(1000):
        series.add(timed(1000.0 + 2.0 * i))
    shown = series.points(max_points=100)
    assert shown["interval_s"] == 20.0 and len(shown["points"]) == 100
    assert sum(p["requests"] for p in shown["points"]) == 1000


def test_names_from_the_run_are_escaped_in_the_page() -> None:
    from locust_aiapi import LLMSummary
    from locust_aiapi._report_types import PhaseRow, ReportSections, ThresholdResult, run_report
    from locust_aiapi.render.html import render_html

    summary = LLMSummary()
    rec = timed(1000.0)
    rec.name, rec.model = "<img src=x onerror=alert(1)>", "<b>model</b>"
    summary.add(rec)
    phase: PhaseRow = {
        "index": 0, "label": "<i>step</i>", "target_users": 1, "spawn_rate": 1.0, "planned_duration_s": 1.0,
        "start_offset_s": 0.0, "duration_s": 1.0, **summary.total.report_row(),
    }  # fmt: skip
    threshold: ThresholdResult = {
        "threshold": "<x>:ttft_ms:p95<1", "measured": 5.0, "passed": False, "error": None,
    }  # fmt: skip
    sections: ReportSections = {
        "thresholds": [threshold], "thresholds_passed": False, "goodput": None, "phases": [phase],
        "timeseries": {"interval_s": 2.0, "points": []}, "arrival": None,
        "cost": cost_report(summary, DEFAULT_PRICES, None),
    }  # fmt: skip
    meta = {"host": "http://u:secret@example.test/<v1>", "locustfile": None, "shape": None, "run": None}
    html = render_html(run_report(summary.report_dict(), sections), {**meta, "workers": None})
    assert "<img" not in html and "<b>model" not in html and "<i>step" not in html and "<x>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;i&gt;step&lt;/i&gt;" in html
    assert "&lt;b&gt;model&lt;/b&gt;" in html  # the cost table names the model


def test_the_report_never_shows_credentials_in_the_host() -> None:
    from locust_aiapi._end_of_run import public_host

    assert public_host("https://user:pw@api.example.test/v1") == "https://api.example.test/v1"
    assert public_host("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert public_host(None) is None


_MEASURE = """<script>
addEventListener("load", () => {
  const page = document.querySelector("iframe").contentDocument;
  const out = {page: page.documentElement.scrollWidth, viewport: page.defaultView.innerWidth, tables: []};
  for (const table of page.querySelectorAll("table")) {
    const first = table.querySelector("th, td").textContent;
    out.tables.push([first, table.scrollWidth, table.parentElement.clientWidth]);
  }
  const pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def measure_widths(page: Path, width_px: int, profile: Path) -> dict[str, Any]:
    """Lay ``page`` out ``width_px`` wide in headless Chromium (in an iframe: the headless window has a
    minimum width of 500 px) and return the page's and each table's scroll width next to its box."""
    wrapper = page.with_name(f"measure-{width_px}.html")
    wrapper.write_text(
        f'<!DOCTYPE html><body style="margin:0"><iframe width="{width_px}" height="900" style="border:0" '
        f'srcdoc="{html_lib.escape(page.read_text(encoding="utf-8"))}"></iframe>{_MEASURE}</body>',
        encoding="utf-8",
    )
    command = [
        shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--window-size={width_px + 100},1000", "--dump-dom", wrapper.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    found = re.search(r'<pre id="measured">(.*?)</pre>', done.stdout)
    assert found, done.stderr[-2000:]
    measured: dict[str, Any] = json.loads(html_lib.unescape(found.group(1)))
    return measured


@pytest.mark.parametrize("width_px", [1440, 1024, 720, PHONE[0]])
def test_no_table_of_the_report_is_clipped(sweep_run: dict[str, Any], tmp_path: Path, width_px: int) -> None:
    measured = measure_widths(sweep_run["path"], width_px, tmp_path / "profile")
    assert measured["viewport"] == width_px
    assert measured["page"] <= width_px, measured
    assert len(measured["tables"]) >= 8  # thresholds, phases, requests, five percentile tables, cost
    clipped = [table for table in measured["tables"] if table[1] > table[2]]
    assert not clipped, clipped


def test_time_series_keeps_a_line_per_name_and_e2e_and_itl() -> None:
    series = TimeSeries()
    for i in range(20):
        rec = timed(1000.5 + 0.2 * i, ok=i % 5 != 4)
        rec.name = "chat" if i % 2 else "embed"
        rec.last_token_s = 10.0 + 0.1 + 0.09  # 10 tokens over 90 ms: ITL 10 ms
        series.add(rec)
    points = series.points()["points"]
    assert sum(p["by_name"]["chat"]["requests"] for p in points) == 10
    assert sum(p["by_name"]["embed"]["requests"] for p in points) == 10
    first = points[0]
    assert first["rps"] == pytest.approx(sum(f["rps"] for f in first["by_name"].values()))
    assert first["e2e_p50_ms"] == pytest.approx(500.0, rel=0.02)
    assert first["itl_p95_ms"] == pytest.approx(10.0, rel=0.02)
    assert first["by_name"]["chat"]["ttft_p50_ms"] == pytest.approx(100.0, rel=0.02)
    failed = sum(sum(f["failures_by_kind"].values()) for p in points for f in p["by_name"].values())
    assert failed == sum(sum(p["failures_by_kind"].values()) for p in points) == 4


def test_time_series_caps_the_names_of_a_bucket_also_when_merging() -> None:
    from locust_aiapi._timeseries import MAX_NAMES, OTHER_NAMES

    workers = [TimeSeries(), TimeSeries()]
    for i in range(3 * MAX_NAMES):
        rec = timed(1000.5)
        rec.name = f"name-{i:02d}"
        workers[i % 2].add(rec)
    master = TimeSeries()
    for worker in workers:
        payload = worker.take_report()
        assert payload is not None
        master.absorb(json.loads(json.dumps(payload)))
    (point,) = master.points()["points"]
    assert len(point["by_name"]) == MAX_NAMES and OTHER_NAMES in point["by_name"]
    assert sum(f["requests"] for f in point["by_name"].values()) == point["requests"] == 3 * MAX_NAMES


def test_the_last_partial_bucket_is_a_rate_per_covered_second_not_a_false_drop() -> None:
    series = TimeSeries()
    for i in range(41):  # 4 requests a second, steadily, from 1000.5 to 1010.5; ends at 1010.5 (1010 bucket)
        series.add(timed(1000.5 + 0.25 * i))
    series.sample_users(1013.0, 4)  # the ticker sampled users after the last request: no rate there
    points = series.points()["points"]
    assert points[-1]["epoch_s"] == 1010.0 and points[-1]["covered_s"] == pytest.approx(0.5)
    steady = [p["rps"] for p in points[1:-1]]
    assert steady == pytest.approx([4.0] * len(steady))
    assert points[-1]["rps"] == pytest.approx(3 / 0.5)  # 1010.0, .25, .5 in half a second: no cliff
    assert points[-1]["output_tokens_per_s"] == pytest.approx(30 / 0.5)


def two_name_report() -> Any:
    """A report of two request names, short "embed" and long "chat", built from real aggregates."""
    from locust_aiapi import LLMSummary
    from locust_aiapi._report_types import ReportSections, run_report

    summary, series = LLMSummary(), TimeSeries()
    for i in range(40):
        rec = timed(1000.5 + 0.2 * i, ttft_s=0.05 if i % 2 else 0.4)
        rec.name = "embed" if i % 2 else "chat"
        summary.add(rec)
        series.add(rec)
    sections: ReportSections = {
        "thresholds": [], "thresholds_passed": None, "goodput": None, "phases": [],
        "timeseries": series.points(), "arrival": None, "cost": cost_report(summary, DEFAULT_PRICES, None),
    }  # fmt: skip
    return run_report(summary.report_dict(), sections)


def test_several_names_get_their_own_headline_figures_and_lines() -> None:
    from locust_aiapi.render.html import render_html

    meta = {"host": None, "locustfile": None, "shape": None, "run": None, "workers": None}
    html = render_html(two_name_report(), meta)  # type: ignore[arg-type]
    assert "TTFT p95, all names merged" in html and "E2E p95, all names merged" in html
    assert "pools every request name" in html
    assert re.search(r'<div class="kpi"><b>chat</b><span>20 requests · TTFT p50 400 / p95 40\d ms', html)
    assert re.search(r'<div class="kpi"><b>embed</b><span>20 requests · TTFT p50 50 / p95 5\d ms', html)
    chart = figure(html, "TTFT p95 by name (ms)")
    assert chart.count("<polyline") == 2 and ">chat</li>" in chart and ">embed</li>" in chart
    rates = figure(html, "Requests/s (completed)")
    assert rates.count("<polyline") == 3 and ">all</li>" in rates  # all, then each name


def test_the_run_configuration_names_settings_without_secrets() -> None:
    from types import SimpleNamespace

    from locust_aiapi._options import AIOptions
    from locust_aiapi._run_config import run_config
    from locust_aiapi._shapes import StepSweepShape

    shape = StepSweepShape()
    shape.steps, shape.step_duration_s = (5, 10), 30  # type: ignore[assignment]
    user = SimpleNamespace(dialect="anthropic")
    environment = SimpleNamespace(
        host="https://me:s3cret@api.example.test/v1", shape_class=shape, user_classes=[user],
        parsed_options=SimpleNamespace(num_users=7, spawn_rate=2.5, run_time=120, ai_steps=None),
    )  # fmt: skip
    options = AIOptions(api_key="sk-secret-key", thresholds=("ttft_ms:p95<500",), output_tokens="256")
    config = run_config(environment, options, two_name_report())
    text = repr(config)
    assert "s3cret" not in text and "sk-secret" not in text
    assert config["Host"] == "https://api.example.test/v1"
    assert config["Users"].startswith("7") and config["Spawn rate"].startswith("2.5/s")
    assert config["Run time"].startswith("120 s") and config["Shape"] == "StepSweepShape"
    assert config["Plan"].startswith("5 users (30 s") and "10 users" in config["Plan"]
    assert config["Model"] == "m" and config["Dialect"] == "anthropic" and config["max_tokens"] == "256"
    assert config["Thresholds"] == "ttft_ms:p95<500" and config["SLO per request"] == "none"


def test_failure_details_are_bounded_and_merge_like_one_process() -> None:
    from locust_aiapi._failure_detail import MAX_MESSAGE_CHARS, MAX_REPORTED, MAX_TRACKED, FailureDetail

    whole, parts = FailureDetail(), [FailureDetail(), FailureDetail()]
    events = [("rate_limited", 429, "429 Too Many Requests")] * 30 + [("timeout", None, "TTFT timeout")] * 7
    events += [("server_error", 500 + i % 3, f"500 request id {i}") for i in range(3 * MAX_TRACKED)]
    events += [("server_error", 502, "x" * 5000)] * 4 + [("stream_error", 200, None)]
    for i, (kind, code, message) in enumerate(events):
        whole.add(kind, code, message)
        parts[i % 2].add(kind, code, message)
    master = FailureDetail()
    for part in parts:
        master.merge(FailureDetail.from_dict(json.loads(json.dumps(part.to_dict()))))
    report, merged = whole.report(), master.report()
    assert report["rate_limited"] == merged["rate_limited"] == {
        "status_codes": {"429": 30}, "messages": [{"message": "429 Too Many Requests", "count": 30}],
        "other_messages": 0,
    }  # fmt: skip
    assert report["timeout"]["status_codes"] == {"none": 7}
    assert report["stream_error"]["messages"] == [{"message": "(no message)", "count": 1}]
    errors = merged["server_error"]
    assert sum(errors["status_codes"].values()) == 3 * MAX_TRACKED + 4  # status codes are exact
    assert len(errors["messages"]) == MAX_REPORTED
    assert errors["messages"][0] == {"message": "x" * MAX_MESSAGE_CHARS, "count": 4}  # it recurs: it stays
    assert sum(m["count"] for m in errors["messages"]) + errors["other_messages"] == 3 * MAX_TRACKED + 4
    assert all(len(part.messages) <= MAX_TRACKED for part in master.kinds.values())
    with pytest.raises(ValueError):
        FailureDetail.from_dict({"timeout": {"messages": []}})


def test_the_report_lists_status_codes_and_messages_per_failure_kind(sweep_run: dict[str, Any]) -> None:
    html, summary = sweep_run["html"], sweep_run["summary"]
    (name,) = summary["requests"]
    detail = summary["requests"][name]["failure_details"]["rate_limited"]
    assert detail["status_codes"] == {"429": summary["requests"][name]["failures_by_kind"]["rate_limited"]}
    assert detail["messages"] and detail["messages"][0]["count"] > 0
    assert summary["total"]["failure_details"]["rate_limited"] == detail
    assert f"429 × {detail['status_codes']['429']:,}" in html
    assert html_lib.escape(detail["messages"][0]["message"]) in html


def test_a_sliver_of_a_last_bucket_joins_the_point_before_it() -> None:
    series = TimeSeries()
    for i in range(39):  # 4 requests a second from 1000.6 to 1010.1: [1010, 1012) is covered for 0.1 s
        series.add(timed(1000.6 + 0.25 * i))
    points = series.points()["points"]
    assert [p["epoch_s"] for p in points][-2:] == [1006.0, 1008.0]
    assert points[-1]["covered_s"] == pytest.approx(2.1) and points[-1]["requests"] == 9
    assert points[-1]["rps"] == pytest.approx(9 / 2.1)  # ~4/s, as before it: no false drop, no spike
    assert [p["rps"] for p in points[1:-1]] == pytest.approx([4.0] * (len(points) - 2))


def test_the_cost_table_shows_one_hour_cache_writes_and_their_price_only_when_there_are_some() -> None:
    from locust_aiapi import LLMSummary
    from locust_aiapi._report_types import ReportSections, run_report
    from locust_aiapi.render.html import render_html

    def html_of(hour_writes: int) -> str:
        summary = LLMSummary()
        rec = timed(1000.0)
        rec.model, rec.prompt_tokens = "claude-sonnet-4-5", 5000
        rec.cache_write_prompt_tokens, rec.cache_write_1h_prompt_tokens = 4000, hour_writes
        summary.add(rec)
        sections: ReportSections = {
            "thresholds": [], "thresholds_passed": True, "goodput": None, "phases": [],
            "timeseries": {"interval_s": 2.0, "points": []}, "arrival": None,
            "cost": cost_report(summary, DEFAULT_PRICES, None),
        }  # fmt: skip
        meta = {"host": None, "locustfile": None, "shape": None, "run": None, "workers": None}
        return render_html(run_report(summary.report_dict(), sections), meta)

    hour = html_of(3000)
    assert "(3000 for 1 h)" in hour.replace(",", "") and "3.750 (6.000 for 1 h)" in hour
    assert "for 1 h" not in html_of(0)
