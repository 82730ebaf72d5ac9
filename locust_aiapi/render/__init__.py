"""Renderers of the end-of-run report: console text, the JSON file, the HTML page.

They read the report (:mod:`locust_aiapi._report_types`) and nothing else from the package:
:mod:`.console` (summary table, thresholds, goodput/open model/cost lines, per-phase table),
:mod:`.html` (with :mod:`.html_tables` and the inline SVG of :mod:`.charts`), :func:`render_json`.
Numbers are formatted in one place, :mod:`.format`.
"""

from __future__ import annotations

import orjson

from .._report_types import RunReport

__all__ = ["render_json"]


def render_json(report: RunReport) -> bytes:
    """What ``--ai-summary-json`` writes: the report as indented JSON, floats unrounded."""
    return orjson.dumps(report, option=orjson.OPT_INDENT_2)
