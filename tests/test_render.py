"""The report's renderers: one set of number formatters, typed report assembly, and the import rule."""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from locust_aiapi._report_types import HISTOGRAM_METRICS, LATENCY_METRICS, NameRow, ReportSections, run_report
from locust_aiapi._summary import LLMSummary
from locust_aiapi.render import render_json
from locust_aiapi.render.format import CONSOLE, HTML, Column, cells

RENDER = Path(__file__).resolve().parents[1] / "locust_aiapi" / "render"


@pytest.mark.parametrize(
    ("value", "digits", "console", "html"),
    [
        (None, 1, "-", "–"),
        (0.0, 1, "0.0", "0.0"),
        (62.5, 1, "62.5", "62.5"),
        (999.94, 1, "999.9", "999.9"),
        (1125.0, 1, "1125", "1,125"),
        (123_456.7, 2, "123457", "123,457"),
        (2_500_000.0, 1, "2.5M", "2,500,000"),
        (3_100_000_000.0, 1, "3.1G", "3,100,000,000"),
        (-1_500_000.0, 1, "-1.5M", "-1,500,000"),
        (7, 3, "7", "7"),  # an int is a count: never decimals
        (12_345, 1, "12345", "12,345"),
        (float("inf"), 1, "inf", "inf"),
    ],
)
def test_one_number_formatter_in_two_styles(
    value: float | None, digits: int, console: str, html: str
) -> None:
    assert CONSOLE.number(value, digits) == console
    assert HTML.number(value, digits) == html


def test_prose_drops_the_decimals_of_whole_numbers_and_tables_keep_them() -> None:
    assert CONSOLE.number(12.0, 2, trim=True) == "12"
    assert CONSOLE.number(12.0, 2) == "12.00"
    assert CONSOLE.number(0.05, 3, trim=True) == "0.050"


def test_percent_and_usd() -> None:
    assert CONSOLE.percent(0.4) == "40.0%" and CONSOLE.percent(0.4, sign=False) == "40.0"
    assert HTML.percent(1 / 3) == "33.3 %" and HTML.percent(None) == "–"
    assert CONSOLE.usd(0.000123) == "$0.0001" and CONSOLE.usd(None) == "-"


def test_columns_apply_to_every_row_in_order() -> None:
    columns = (Column[int]("n", str), Column[int]("double", lambda n: str(2 * n), width=6))
    assert cells(columns, [1, 2]) == [["1", "2"], ["2", "4"]]
    assert cells(columns, []) == []


def _sections() -> ReportSections:
    return {
        "thresholds": [],
        "thresholds_passed": None,
        "goodput": None,
        "phases": [],
        "timeseries": {"interval_s": 2.0, "points": []},
        "arrival": None,
        "cost": {"pricing": "p", "models": {}, "total_usd": None, "unpriced_models": []},
    }


def test_the_run_report_keeps_the_json_key_order_and_has_workers_only_when_given() -> None:
    summary = LLMSummary().report_dict(datetime(2024, 1, 1, tzinfo=timezone.utc))
    local = run_report(summary, _sections())
    assert list(local) == ["generated_at", "requests", "total", *_sections()]
    workers = {"reported": 2, "lost": 0, "lost_ids": [], "requests_by_worker": {}, "rejected_reports": 0}
    master = run_report(summary, _sections(), workers)
    assert list(master) == ["generated_at", "requests", "total", "workers", *_sections()]
    assert orjson.loads(render_json(master)) == master
    assert render_json(master).startswith(b'{\n  "generated_at": "2024-01-01T00:00:00+00:00"')


def test_a_row_has_exactly_the_typed_keys_and_one_list_of_metrics() -> None:
    row = LLMSummary().report_dict()["total"]
    assert set(row) == set(NameRow.__annotations__)
    assert set(HISTOGRAM_METRICS) == {*LATENCY_METRICS, "first_attempt_e2e_ms", "client_lag_ms"} <= set(row)


def _package_imports(path: Path, package: str) -> set[str]:
    """Modules of locust_aiapi that a module of ``package`` imports (relative ones resolved), at any level."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = package.split(".")
            base = parts[: len(parts) + 1 - node.level]
            found.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("locust_aiapi"):
            found.add(str(node.module))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("locust_aiapi"))
    return found


def test_renderers_import_nothing_from_the_package_but_the_report_types() -> None:
    modules = sorted(RENDER.glob("*.py"))
    expected = {"__init__", "console", "format", "html", "html_tables", "charts"}
    assert {path.stem for path in modules} >= expected
    for path in modules:
        outside = {
            name
            for name in _package_imports(path, "locust_aiapi.render")
            if name != "locust_aiapi._report_types" and not name.startswith("locust_aiapi.render")
        }
        assert not outside, f"{path.name} imports {outside}"


def test_the_summary_imports_no_presentation() -> None:
    summary = RENDER.parent / "_summary.py"
    assert not {name for name in _package_imports(summary, "locust_aiapi") if "render" in name}
