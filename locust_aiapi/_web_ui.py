"""The plugin in Locust's web UI: an "LLM" tab, a live page with charts, downloads, a checked form.

Registered by the composition root on ``init`` when there is a web UI (master or single process).
Everything uses Locust's own extension points, no forked UI:

- ``extended_tabs`` / ``extended_tables`` in ``web_ui.template_args`` add the LLM tab; its rows
  (per request name, from our histograms) ride on Locust's own ``/stats/requests`` poll as
  ``extended_stats``, so the tab updates with the rest of the page (every 2 s).
- ``{base}/ai/`` is a page of our own (live charts of TTFT p50/p95 and output tokens/s, the current
  phase, threshold verdicts and cost after the run), fed by ``{base}/ai/live.json``; it is linked
  from the LLM tab's table and from the Download Data tab (``extended_csv_files``), next to the
  summary JSON, the HTML report and the JSONL of the current (or last) test.
- The start form's ``--ai-*`` fields (:mod:`_web_form`), and a ``/swarm`` POST refused with the
  form's own error banner when a value is malformed or no host is known.

Every figure is :func:`~locust_aiapi._end_of_run.build_report` of the run state: the same numbers the
summary JSON holds (on a master, the merge of its workers' reports).
"""

from __future__ import annotations

import os
import time
from importlib import resources
from typing import Any

import orjson

from ._end_of_run import build_report
from ._guard import guarded
from ._options import OPTIONS, AIOptions, Option
from ._report_types import RunReport
from ._run_state import RunState
from ._web_form import form_fields, form_options, form_problem, help_css
from .render import render_json
from .render.web_live import live_view, phase_label, tab_rows

__all__ = ["TAB_KEY", "TAB_STRUCTURE", "install", "options_in_effect"]

TAB_KEY = "llm"
TAB_STRUCTURE = (
    ("name", "Name"),
    ("requests", "Requests"),
    ("failures", "Failures by kind"),
    ("ttft", "TTFT p50 / p95 / p99 (ms)"),
    ("ttfc", "TTFC p50 / p95 / p99 (ms)"),
    ("itl", "ITL p50 / p95 / p99 (ms)"),
    ("e2e", "E2E p50 / p95 / p99 (ms)"),
    ("tokens", "Output tokens/s"),
    ("goodput", "Goodput"),
)


def install(environment: Any, web_ui: Any, state: RunState) -> None:
    """Add the LLM tab, the live page, the downloads and the form checks to ``web_ui``."""
    parsed = environment.parsed_options
    base = str(getattr(parsed, "web_base_path", None) or "").rstrip("/")
    routes = _Routes(environment, web_ui, state, base)
    for path, endpoint, view in (
        ("/ai/", "locust_aiapi_page", routes.page),
        ("/ai/live.json", "locust_aiapi_live", routes.live),
        ("/ai/summary.json", "locust_aiapi_summary", routes.summary_json),
        ("/ai/report.html", "locust_aiapi_report", routes.report_html),
        ("/ai/requests.jsonl", "locust_aiapi_jsonl", routes.requests_jsonl),
    ):
        view_func = web_ui.auth_required_if_enabled(view)
        web_ui.app.add_url_rule(base + path, endpoint=endpoint, view_func=view_func)
    web_ui.template_args.update(
        extended_tabs=[{"title": "LLM", "key": TAB_KEY}],
        extended_tables=[{"key": TAB_KEY, "structure": [{"key": k, "title": t} for k, t in TAB_STRUCTURE]}],
        extended_csv_files=[{"href": f"{base}{href}", "title": title} for href, title in _DOWNLOADS],
    )
    web_ui.app.after_request(routes.add_tab_rows)
    web_ui.app.after_request(routes.add_form_help)
    web_ui.app.before_request(routes.refuse_bad_form)
    _refill_form(environment, web_ui)


_DOWNLOADS = (
    ("/ai/", "LLM live view (charts, thresholds, cost)"),
    ("/ai/summary.json", "Download LLM summary JSON"),
    ("/ai/report.html?download=1", "Download LLM HTML report"),
    ("/ai/requests.jsonl", "Download requests JSONL"),
)


def _refill_form(environment: Any, web_ui: Any) -> None:
    """Locust rebuilds ``extra_options`` on every page load; ours are rewritten right after."""
    rebuild = web_ui.update_template_args
    rewrite = guarded(
        lambda: web_ui.template_args.update(
            extra_options=form_fields(web_ui.template_args.get("extra_options") or {}, environment)
        ),
        "labelling the web UI's form",
    )

    def update_template_args() -> None:
        rebuild()
        rewrite()

    web_ui.update_template_args = update_template_args
    if web_ui.template_args:
        rewrite()


def options_in_effect(options: AIOptions) -> list[dict[str, Any]]:
    """Every option (the API key aside) with its label, full help and the value the test runs with;
    the form's labels are short, the live page shows the help in full."""
    return [
        {
            "flag": option.flag,
            "label": option.label,
            "help": option.help,
            "value": _flag_value(option, getattr(options, option.field)),
            "form": option.web_ui,
        }
        for option in OPTIONS
        if option.field != "api_key"
    ]


REPORT_TTL_S = 1.0
"""The live views share one report for this long: building it takes ~2 ms for one request name and
~25 ms for 100 (20,000 records), on the master's one gevent loop, for every open browser tab."""


def _flag_value(option: Option, value: Any) -> Any:
    """The value as the flag says it: ``--ai-no-summary`` is true when the summary is *not* printed."""
    return (not value) if option.negate else value


class _Routes:
    """The views, bound to one environment and its run state."""

    def __init__(self, environment: Any, web_ui: Any, state: RunState, base: str) -> None:
        self.environment, self.web_ui, self.state, self.base = environment, web_ui, state, base
        self._report: tuple[float, int, RunReport] | None = None

    def live_report(self) -> RunReport:
        """The report of the current test, at most :data:`REPORT_TTL_S` old (downloads build their own)."""
        now_s = time.monotonic()
        cached = self._report
        if cached is not None and now_s - cached[0] < REPORT_TTL_S and cached[1] == self.state.tests_started:
            return cached[2]
        report = build_report(self.state)
        self._report = (now_s, self.state.tests_started, report)
        return report

    def page(self) -> Any:
        from flask import Response

        html = resources.files("locust_aiapi.render").joinpath("live.html").read_text(encoding="utf-8")
        return Response(html, content_type="text/html; charset=utf-8")

    def live(self) -> Any:
        from flask import Response

        view = live_view(self.live_report(), self.state, self.environment, self.base)
        view["options"] = options_in_effect(self.state.options)
        headers = {"Cache-Control": "no-store"}
        return Response(orjson.dumps(view), content_type="application/json", headers=headers)

    def summary_json(self) -> Any:
        from flask import Response

        body = render_json(build_report(self.state))
        return Response(body, content_type="application/json", headers=self._attachment("summary", "json"))

    def report_html(self) -> Any:
        from flask import Response, request

        from ._end_of_run import report_meta
        from .render.html import render_html

        report = build_report(self.state)
        headers = self._attachment("report", "html") if request.args.get("download") else {}
        page = render_html(report, report_meta(self.environment, report))
        return Response(page, content_type="text/html; charset=utf-8", headers=headers)

    def requests_jsonl(self) -> Any:
        from flask import Response

        path = self.state.jsonl.path if self.state.jsonl is not None else None  # this test's file
        if not path or not os.path.exists(path):
            why = "no JSONL on this process: start Locust with --ai-requests-jsonl PATH"
            if self.state.options.requests_jsonl and self.state.ledger is not None:
                why = "each worker writes its own JSONL (requests.<pid>.jsonl on its machine)"
            return Response(why + "\n", status=404, content_type="text/plain; charset=utf-8")
        self.state.flush()
        with open(path, "rb") as file:
            body = file.read()
        headers = self._attachment("requests", "jsonl")
        return Response(body, content_type="application/x-ndjson", headers=headers)

    def _attachment(self, what: str, ext: str) -> dict[str, str]:
        return {"Content-Disposition": f"attachment; filename=llm_{what}.{self.state.tests_started}.{ext}"}

    def add_tab_rows(self, response: Any) -> Any:
        """Locust's ``/stats/requests`` answer, with the LLM tab's rows added."""
        from flask import request

        if request.path != f"{self.base}/stats/requests" or response.status_code != 200:
            return response
        try:
            data = orjson.loads(response.get_data())
            rows = tab_rows(self.live_report(), self.base, phase_label(self.state))
            data["extended_stats"] = [{"key": TAB_KEY, "data": rows}]
            response.set_data(orjson.dumps(data))
        except Exception:  # never break Locust's own page: it is shown without our rows
            from ._guard import listener_errors

            listener_errors["adding the LLM tab's rows"] += 1
        return response

    def add_form_help(self, response: Any) -> Any:
        """Locust's start page, with the full help of our form fields below them (``help_css``)."""
        from flask import request

        if request.path not in (f"{self.base}/", self.base) or response.mimetype != "text/html":
            return response
        try:
            css = help_css(self.web_ui.template_args.get("extra_options") or {})
            page = response.get_data(as_text=True)
            if css and "</head>" in page:
                response.set_data(
                    page.replace("</head>", f'<style id="locust-aiapi-help">{css}</style></head>', 1)
                )
        except Exception:  # never break Locust's own page: it is shown without the help
            from ._guard import listener_errors

            listener_errors["adding the form's help"] += 1
        return response

    def refuse_bad_form(self) -> Any:
        """A ``/swarm`` POST with a malformed value or no host: refused, in Locust's own answer shape."""
        from flask import jsonify, request
        from werkzeug.datastructures import ImmutableMultiDict

        if request.method != "POST" or request.path != f"{self.base}/swarm" or not self._logged_in():
            return None  # not logged in: Locust's own login check answers, and our message says nothing
        # our fields are named in words (see _web_form.web_key): Locust's handler reads them by dest
        request.form = ImmutableMultiDict(form_options(request.form.items(multi=True)))
        problem = form_problem(self.environment, request.form)
        if problem is None:
            return None
        return jsonify({"success": False, "message": problem, "host": self.environment.host})

    def _logged_in(self) -> bool:
        if not getattr(self.web_ui, "web_login", False):
            return True
        from flask_login import current_user  # type: ignore[import-untyped]

        return bool(current_user.is_authenticated)
