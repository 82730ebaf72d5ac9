"""The Grafana dashboard: every panel's PromQL, statically against the exporter's metric names and
labels, then live against a real Prometheus scraping a real distributed run (master, two workers,
the mock server with faults injected): every query must be valid and return data.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from locust_aiapi.mock import MockProcess

from ._support import ROOT
from .prometheus_support import LocustProcess, free_port, start_prometheus

DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "locust-aiapi.json"
DATASOURCES = ROOT / "docker" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

NAME_MODEL = {"name", "model"}
HISTOGRAMS = {
    f"locust_aiapi_{metric}_seconds": NAME_MODEL for metric in ("ttft", "ttfc", "itl", "tpot", "e2e")
}
SERIES: dict[str, set[str]] = {  # the exporter's series and their labels
    **{f"{metric}_bucket": labels | {"le"} for metric, labels in HISTOGRAMS.items()},
    **{f"{metric}_{suffix}": labels for metric, labels in HISTOGRAMS.items() for suffix in ("sum", "count")},
    "locust_aiapi_requests_total": NAME_MODEL | {"outcome"},
    "locust_aiapi_failures_total": NAME_MODEL | {"kind"},
    "locust_aiapi_rate_limited_total": NAME_MODEL,
    "locust_aiapi_retries_total": NAME_MODEL,
    "locust_aiapi_prompt_tokens_total": NAME_MODEL,
    "locust_aiapi_output_tokens_total": NAME_MODEL,
    "locust_aiapi_users": set(),
    "locust_aiapi_workers": {"state"},
    "locust_aiapi_workers_lost": set(),
    "locust_aiapi_run_state": {"state"},
    "locust_requests_total": {"method", "name"},
    "locust_failures_total": {"method", "name"},
    "locust_requests_current_rps": {"method", "name"},
    "locust_response_time_seconds": {"method", "name", "quantile"},
}
# what the dashboard must show (issue 4): latency percentiles, throughput, errors, load
REQUIRED_QUANTILES = {metric: {"0.5", "0.95", "0.99"} for metric in HISTOGRAMS if "tpot" not in metric}
REQUIRED_SERIES = {
    "locust_aiapi_output_tokens_total", "locust_requests_current_rps", "locust_aiapi_requests_total",
    "locust_aiapi_failures_total", "locust_aiapi_rate_limited_total", "locust_aiapi_users",
    "locust_aiapi_workers",
}  # fmt: skip


def load_dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # the panels of a collapsed row


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in panels(load_dashboard())
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def series_in(expr: str) -> list[str]:
    return re.findall(r"\b(locust_[a-z0-9_]+)\b", expr)


def labels_in(expr: str) -> set[str]:
    """Labels named in selectors and in by/without clauses."""
    used = set()
    for selector in re.findall(r"\{([^}]*)\}", expr):
        used |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector))
    for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        used |= {label.strip() for label in grouping.split(",") if label.strip()}
    return used


# --- static -------------------------------------------------------------------------------------


def test_every_panel_has_a_query_on_the_provisioned_datasource() -> None:
    dashboard = load_dashboard()
    (provisioned,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    assert variable["current"]["value"] == provisioned["uid"]
    reference = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    shown = [p for p in panels(dashboard) if p["type"] != "row"]
    assert len(shown) >= 10
    for panel in shown:
        assert panel["datasource"] == reference, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"] == reference, panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    for templated in dashboard["templating"]["list"]:
        if templated["type"] == "query":
            assert templated["datasource"] == reference


def test_queries_use_only_the_exporters_series_and_labels() -> None:
    for title, expr in queries():
        used = series_in(expr)
        assert used, (title, expr)
        unknown = [name for name in used if name not in SERIES]
        assert not unknown, f"{title}: {unknown} are not exported (a histogram needs _bucket/_sum/_count)"
        known_labels = set().union(*(SERIES[name] for name in used))
        assert labels_in(expr) <= known_labels, (title, expr, labels_in(expr) - known_labels)
        for name in used:
            if name.endswith(("_total", "_bucket", "_sum", "_count")):
                assert re.search(rf"(rate|increase)\({name}\b", expr), f"{title}: {name} is a counter"


def test_the_dashboard_shows_what_issue_4_asks_for() -> None:
    found: dict[str, set[str]] = {metric: set() for metric in HISTOGRAMS}
    for _, expr in queries():
        for q, metric in re.findall(r"histogram_quantile\(([\d.]+),.*?\b(locust_aiapi_\w+)_bucket", expr):
            found[metric].add(q)
    for metric, wanted in REQUIRED_QUANTILES.items():
        assert wanted <= found[metric], metric
    used = {name for _, expr in queries() for name in series_in(expr)}
    assert used >= REQUIRED_SERIES, REQUIRED_SERIES - used
    assert any("by (kind)" in expr for _, expr in queries() if "failures_total" in expr)


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    taken: set[tuple[int, int]] = set()
    ids = []
    for panel in panels(load_dashboard()):
        ids.append(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
    assert len(ids) == len(set(ids))


def test_template_variables_query_exported_labels() -> None:
    for variable in load_dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"]).groups()  # type: ignore[union-attr]
        assert label in SERIES[metric]
        assert variable["allValue"] == ".*"  # "All" must match every value in the =~ selectors


# --- live ---------------------------------------------------------------------------------------


def as_prometheus_query(expr: str, window: str) -> str:
    """What Grafana sends for this panel with every variable at "All"."""
    for variable, value in (("$__rate_interval", window), ("$name", ".*"), ("$model", ".*")):
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


MOCK_ARGS = [
    "--ttft-ms", "60", "--itl-ms", "5", "--output-tokens", "20", "--embedding-latency-ms", "10",
    "--rate-429", "0.08", "--rate-500", "0.05", "--rate-stream-error", "0.03", "--seed", "4",
]  # fmt: skip


@pytest.fixture
def live_run(tmp_path: Path) -> Iterator[Any]:
    """Prometheus scraping a headless master (two workers) running locustfiles/chat.py on the mock."""
    port = free_port()
    with MockProcess(MOCK_ARGS) as mock:
        prometheus = start_prometheus(tmp_path, [f"127.0.0.1:{port}"], scrape_interval="1s")
        locustfile = ROOT / "locustfiles" / "chat.py"
        master_port = free_port()
        master = LocustProcess(
            locustfile,
            ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
             "--expect-workers", "2", "--headless", "--host", mock.url, "-u", "30", "-r", "30", "-t", "40s",
             "--ai-metrics-port", str(port), "--ai-no-summary"],
            tmp_path, name="master",
        )  # fmt: skip
        workers = [
            LocustProcess(
                locustfile,
                ["--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)],
                tmp_path,
                name=f"worker{i}",
            )
            for i in range(2)
        ]
        try:
            yield prometheus
        finally:
            for process in (*workers, master):
                process.stop()
            prometheus.stop()


def test_every_panel_query_is_valid_and_returns_data_during_a_real_run(live_run: Any) -> None:
    prometheus = live_run
    failures_and_429s = (
        'sum(locust_aiapi_requests_total{outcome="failure"}) > 0 and sum(locust_aiapi_rate_limited_total) > 0'
    )
    prometheus.wait_for(failures_and_429s, bool, timeout_s=60)
    time.sleep(12)  # a 10 s rate window full of samples, at 1 s scrapes
    at = time.time() - 1
    empty, values = [], {}
    for title, expr in queries():
        result = prometheus.query(as_prometheus_query(expr, "10s"), at=at)  # raises on invalid PromQL
        samples = [float(item["value"][1]) for item in result]
        if not any(math.isfinite(v) for v in samples):
            empty.append((title, expr, result))
        values[expr] = samples
    assert not empty, empty

    # and the numbers are the run's: the mock answers after ~60 ms, 30 users on two workers
    def value(title: str, legend: str) -> float:
        (panel,) = [p for p in panels(load_dashboard()) if p["title"] == title]
        (target,) = [t for t in panel["targets"] if t["legendFormat"] == legend]
        (sample,) = values[target["expr"]]
        return sample

    assert 0.05 <= value("Time to first token", "p50") <= 0.1
    assert value("Time to first token", "p50") <= value("Time to first token", "p99")
    assert value("Users", "") == 30
    assert value("Workers", "") == 2
    assert 0.5 < value("Success rate", "") < 1.0
