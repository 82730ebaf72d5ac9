"""The web UI's start form: what it shows, what it refuses (pure: no server, no browser)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from locust import task

from locust_aiapi import AIChatUser, StagesShape
from locust_aiapi._end_of_run import output_path
from locust_aiapi._options import OPTIONS, add_arguments
from locust_aiapi._web_form import (
    WORD_JOINER,
    form_fields,
    form_options,
    form_problem,
    help_css,
    web_help,
    web_key,
)


class NoHostUser(AIChatUser):
    @task
    def ask(self) -> None:  # pragma: no cover - never run
        pass


class HostUser(NoHostUser):
    host = "http://127.0.0.1:8000"


def _parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(_Plain(parser))
    return parser.parse_args(list(argv))


class _Plain:
    """Locust's parser takes env_var= and include_in_web_ui=; argparse does not."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser

    def add_argument(self, *args: Any, env_var: str = "", include_in_web_ui: bool = True, **kw: Any) -> None:
        self.parser.add_argument(*args, **kw)


def _environment(user: type = HostUser, shape: Any = None, *argv: str, host: str | None = None) -> Any:
    return SimpleNamespace(
        host=host, user_classes=[user], available_user_classes={}, available_shape_classes={},
        shape_class=shape, parsed_options=_parsed(*argv), web_ui=None,
    )  # fmt: skip


def test_a_form_without_a_host_is_refused_with_the_way_out() -> None:
    problem = form_problem(_environment(NoHostUser), {"host": "", "user_count": "1"})
    assert problem is not None and problem.startswith("No host for NoHostUser: type the API's base URL")
    assert form_problem(_environment(NoHostUser), {"host": "http://127.0.0.1:8000"}) is None
    assert form_problem(_environment(NoHostUser, None, host="http://127.0.0.1:8000"), {"host": ""}) is None
    assert form_problem(_environment(HostUser), {"host": ""}) is None


def test_a_host_without_a_scheme_is_refused() -> None:
    problem = form_problem(_environment(), {"host": "127.0.0.1:8000"})
    assert (
        problem
        == "Host '127.0.0.1:8000' has no scheme: write http://127.0.0.1:8000 or https://127.0.0.1:8000"
    )


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("ai_threshold", "ttft_ms:p95<<3000", "--ai-threshold: threshold 'ttft_ms:p95<<3000'"),
        ("ai_threshold", "ttft_ms<3000", "ttft_ms needs a statistic"),
        ("ai_slo_ttft_ms", "-5", "--ai-slo-ttft-ms: must be more than 0, got -5"),
        ("ai_slo_e2e_ms", "fast", "--ai-slo-e2e-ms: expected a number, got 'fast'"),
        ("ai_max_retries", "1.5", "--ai-max-retries: expected a whole number, got '1.5'"),
        ("ai_dialect", "opneai", "unknown AI dialect 'opneai'; known dialects: "),
    ],
)
def test_a_malformed_value_is_refused_with_the_options_message(field: str, text: str, message: str) -> None:
    problem = form_problem(_environment(), {"host": "", field: text})
    assert problem is not None and message in problem


def test_good_values_and_empty_fields_pass() -> None:
    form = {
        "host": "",
        "ai_threshold": "ttft_ms:p95<3000,error_rate<0.05",
        "ai_slo_ttft_ms": "",
        "ai_no_summary": "true",
    }
    assert form_problem(_environment(), form) is None


def test_an_output_path_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    problem = form_problem(_environment(), {"ai_summary_json": str(blocker / "summary.json")})
    assert problem is not None and problem.startswith("cannot write --ai-summary-json")


def test_a_shape_plan_typed_in_the_form_is_checked() -> None:
    environment = _environment(HostUser, StagesShape())
    problem = form_problem(environment, {"ai_stages": "2m:ten"})
    assert problem is not None and "2m:ten" in problem
    assert form_problem(environment, {"ai_stages": "10s:5,10s:0"}) is None


def _locust_fields() -> dict[str, dict[str, Any]]:
    """What Locust's ``ui_extra_args_dict`` gives for our web-UI options (help, no value)."""
    return {
        option.dest: {"default_value": False if option.switch else None, "help_text": option.help}
        for option in OPTIONS
        if option.web_ui
    }


def _key(flag: str) -> str:
    return web_key(next(option for option in OPTIONS if option.flag == flag))


def test_fields_read_as_words_and_start_from_the_last_tests_values() -> None:
    environment = _environment(
        HostUser, None, "--ai-threshold", "ttft_ms:p95<3000", "--ai-slo-ttft-ms", "500"
    )
    fields = form_fields({**_locust_fields(), "other_plugin": {"help_text": "theirs"}}, environment)
    # a text field's help is shown below it (help_css), a checkbox's in its label's bracket
    assert fields["SLO: TTFT (ms)"] == {"default_value": 500.0, "help_text": ""}
    assert fields["Thresholds"]["default_value"] == "ttft_ms:p95<3000"
    assert fields["Output: no console summary"] == {
        "default_value": False,
        "help_text": "Do not print the LLM summary table at the end of a run. [--ai-no-summary]",
    }
    assert fields["other_plugin"] == {"help_text": "theirs"}
    assert not any(key.startswith("ai_") for key in fields)


# Locust 2.47's page (webui/dist/assets/src-*.js), ported: di camel-cases the names it loads, fi
# snake-cases the names it posts unless they start with a capital, hi makes the label.
def _locust_loads(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda match: match.group(1).upper(), name)


def _locust_posts(name: str) -> str:
    if name[0] == name[0].upper():
        return name
    return re.sub(r"([a-z0-9])([A-Z0-9])", r"\1_\2", name).lower()


def _locust_label(name: str) -> str:
    spaced = re.sub(r"([a-z0-9])([A-Z0-9])", r"\1 \2", name)
    return spaced[:1].upper() + spaced[1:]


def test_locusts_page_shows_the_label_and_posts_back_the_option() -> None:
    keys = [web_key(option) for option in OPTIONS if option.web_ui]
    assert len(set(keys)) == len(keys)
    for option in OPTIONS:
        if not option.web_ui:
            continue
        key = web_key(option)
        assert _locust_label(_locust_loads(key)).replace(WORD_JOINER, "") == option.label.split(", e.g.")[0]
        posted = _locust_posts(_locust_loads(key))
        assert form_options([(posted, "x")]) == [(option.dest, "x")], option.flag
    assert _key("--ai-slo-e2e-ms") == f"SLO: E2{WORD_JOINER}E (ms)"  # "E2 E" without the joiner
    # Locust's own fields and another plugin's pass through unchanged
    assert form_options([("user_count", "4"), ("host", "h"), ("ai_threshold", "e")]) == [
        ("user_count", "4"),
        ("host", "h"),
        ("ai_threshold", "e"),
    ]


def test_a_form_posted_with_word_names_is_checked_as_its_options() -> None:
    environment = _environment(HostUser)
    posted = dict(form_options([(_key("--ai-threshold"), "ttft_ms:p95<<1")]))
    problem = form_problem(environment, posted)
    assert problem is not None and "ttft_ms:p95<<1" in problem


def test_the_help_of_text_fields_is_shown_below_them() -> None:
    fields = form_fields(_locust_fields(), _environment(HostUser))
    css = help_css(fields)
    threshold = next(option for option in OPTIONS if option.flag == "--ai-threshold")
    assert f'input[name="{web_key(threshold)}"]' in css
    shown = re.search(r'name="Thresholds"\]\)::after\{content:"(.*?)"\}', css)
    assert shown is not None
    assert shown.group(1).replace("\\3c ", "<") == web_help(threshold)
    assert "ttft_ms:p95\\3c 3000" in css  # a "<" in help text cannot close the <style> element
    assert "Output: no console summary" not in css  # a checkbox: its help is in its label
    assert "Shape: stages" not in css  # not in this form
    assert help_css({}) == ""


def test_css_strings_escape_quotes_and_backslashes() -> None:
    from locust_aiapi._web_form import _css_text

    assert _css_text('a"b\\c<d\ne') == 'a\\"b\\\\c\\3c d\\a e'


def test_every_option_of_the_form_has_a_label_in_words() -> None:
    for option in OPTIONS:
        assert option.label and not option.label.lower().startswith("ai "), option.flag
        assert option.label[0].isupper(), option.flag  # else Locust's page snake-cases its name


def test_web_ui_outputs_are_numbered_per_test() -> None:
    headless, web = SimpleNamespace(web_ui=None), SimpleNamespace(web_ui=object())
    assert output_path(headless, "out/summary.json", 3) == "out/summary.json"
    assert output_path(web, "out/summary.json", 1) == "out/summary.1.json"
    assert output_path(web, "out/report.html", 2) == "out/report.2.html"
    assert output_path(web, "requests", 2) == "requests.2"


def test_the_llm_tab_has_a_row_per_conversation_turn() -> None:
    """How TTFT grows turn by turn is what conversations are tested for: the tab shows it too."""
    import dataclasses

    from locust_aiapi._end_of_run import build_report
    from locust_aiapi._run_state import RunState
    from locust_aiapi.render.web_live import tab_rows

    from .test_summary import chat_ok

    state = RunState()
    for turn, ttft_s in ((1, 0.2), (2, 0.3), (3, 0.4)):
        record = chat_ok(0.0, ttft_s=ttft_s, tokens=4, gap_s=0.01, tail_s=0.0, prompt=10 * turn)
        state.record(dataclasses.replace(record, conversation_id="c1", turn=turn))
    rows = {row["name"]: row for row in tab_rows(build_report(state))}
    turns = [name for name in rows if "· turn" in name]
    assert turns == ["Aggregated · turn 1", "Aggregated · turn 2", "Aggregated · turn 3"]
    assert rows["Aggregated · turn 3"]["ttft"].startswith("400")


def test_the_llm_tab_says_the_client_lag_and_when_the_run_is_client_bound() -> None:
    import dataclasses

    from locust_aiapi._end_of_run import build_report
    from locust_aiapi._run_state import RunState
    from locust_aiapi.render.web_live import tab_rows

    from .test_summary import chat_ok

    def link_row(lags_s: tuple[float, ...]) -> str:
        state = RunState()
        record = chat_ok(0.0, ttft_s=0.2, tokens=4, gap_s=0.01, tail_s=0.0, prompt=10)
        state.record(dataclasses.replace(record, client_lags_s=list(lags_s)))
        return tab_rows(build_report(state))[-1]["name"]

    assert link_row(()).startswith("→ charts")  # nothing measured: nothing said
    assert re.match(r"→ client lag p99 0\.4\d? ms · charts", link_row((0.0004,) * 100))
    bound = link_row((0.02,) * 100)
    assert "CLIENT-BOUND lag p99 20" in bound and "(limit 5.0 ms): add workers · charts" in bound
