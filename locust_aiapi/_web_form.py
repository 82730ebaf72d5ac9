"""The ``--ai-*`` fields of Locust's start form: which are shown, what they say, what they refuse.

Locust builds the form's "Custom parameters" from every option added with ``include_in_web_ui``: the
field's name is the option's ``dest``, its label that name split at case changes ("Ai_slo_ttft_ms")
followed by the argparse help in brackets, the fields sorted by name, and its default the value on the
*command line* (Locust parses ``sys.argv`` again for each page). So :func:`form_fields` rewrites that
part of ``web_ui.template_args``: each of our fields is named by its label in words (:func:`web_key`,
so "SLO: TTFT (ms)", and sorting groups "Output: ...", "Shape: ...", "SLO: ..."), its bracket holds the
full help, a shape's fields show only when the locustfile has that shape, and each field starts from
the value of the last test (what the last Start put into ``parsed_options``). :func:`form_options`
maps a posted form back to the ``dest`` names Locust copies into ``parsed_options``.

Locust's page changes a field name three ways, all undone or avoided by :func:`web_key`: ``_x`` becomes
``X`` when the page loads (no underscore in our names), a name that does not start with a capital is
turned back into snake case when posted (ours all start with one), and the label splits a lower-case
letter or digit followed by a capital or digit ("E2E" -> "E2 E", "p95" -> "p9 5"): there, and after an
underscore, an invisible WORD JOINER (U+2060) sits, so the label shows exactly the words.

:func:`form_problem` checks a ``/swarm`` POST the way the command line is checked, before Locust
starts anything: it returns the message the form shows, or None.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import ConfigurationError
from ._files import ensure_writable
from ._options import OPTIONS, AIOptions, Option
from ._shapes import AIShape
from ._startup import check_host
from ._users import is_ai_user_class
from .dialects import resolve_dialect

__all__ = [
    "WORD_JOINER",
    "applies",
    "form_fields",
    "form_options",
    "form_problem",
    "help_css",
    "web_help",
    "web_key",
]

_BY_DEST = {option.dest: option for option in OPTIONS}
_SHAPE_OPTIONS = {
    "ai_stages": "StagesShape",
    "ai_steps": "StepSweepShape",
    "ai_step_duration": "StepSweepShape",
    "ai_spike": "SpikeShape",
}
_ARRIVAL_OPTIONS = ("ai_arrival_rate", "ai_arrival_poisson", "ai_arrival_max_delay")
_TRUE = ("true", "on", "1", "yes")
# where Locust's page would split a label or camel-case a name: before a capital or digit that follows
# a lower-case letter or digit, and after an underscore
_CHANGED_BY_LOCUST = re.compile(r"(?<=[a-z0-9])(?=[A-Z0-9])|(?<=_)(?=[a-z0-9])")
WORD_JOINER = "\u2060"


def web_key(option: Option) -> str:
    """The form field's name for ``option``: its label's words (examples go to the help), as shown."""
    return _CHANGED_BY_LOCUST.sub(WORD_JOINER, option.label.split(", e.g.")[0])


def web_help(option: Option) -> str:
    """The bracket after the label: the option's full help, and the flag that sets it elsewhere."""
    return f"{option.help} [{option.flag}]"


_BY_WEB_KEY = {web_key(option): option for option in OPTIONS if option.web_ui}


def applies(option: Option, environment: Any) -> bool:
    """Whether a value typed for ``option`` can change the next test of ``environment``."""
    if not option.web_ui:
        return False
    shape_name = _SHAPE_OPTIONS.get(option.dest)
    if shape_name is not None:
        return any(shape_name in _ancestors(type(shape)) for shape in _shapes(environment))
    if option.dest in _ARRIVAL_OPTIONS:
        return any("ArrivalRateUser" in _ancestors(cls) for cls in _user_classes(environment))
    return True


def _ancestors(cls: type) -> set[str]:
    return {base.__name__ for base in cls.__mro__}


def _shapes(environment: Any) -> list[Any]:
    shapes = list((getattr(environment, "available_shape_classes", None) or {}).values())
    return [*shapes, environment.shape_class] if environment.shape_class is not None else shapes


def _user_classes(environment: Any) -> list[type]:
    available = getattr(environment, "available_user_classes", None) or {}
    return [*(environment.user_classes or ()), *available.values()]


def form_fields(extra_options: Mapping[str, Any], environment: Any) -> dict[str, Any]:
    """Locust's ``extra_options`` template argument with our fields labelled, filtered and refilled."""
    parsed = environment.parsed_options
    fields: dict[str, Any] = {}
    for dest, field in extra_options.items():
        option = _BY_DEST.get(dest)
        if option is None:
            fields[dest] = field  # another plugin's field: as Locust made it
        elif applies(option, environment):
            key = web_key(option)
            # a text field's label is cut at its width: its help goes below it instead (help_css)
            fields[key] = {**field, "help_text": web_help(option) if option.switch else ""}
            current = getattr(parsed, dest, None) if parsed is not None else None
            if current is not None and current != []:
                fields[key]["default_value"] = _shown(current)
    return fields


_FIELD = ".MuiTextField-root"
_HELP_STYLE = "display:block;margin:4px 14px 0;font-size:.75rem;line-height:1.4;opacity:.7"


def help_css(fields: Mapping[str, Any]) -> str:
    """A style sheet that shows each of our text fields' full help below the field, as MUI's helper text
    would (Locust's form has no such slot; ``:has`` finds the field by its name)."""
    rules = [
        f'{_FIELD}:has(input[name="{_css_text(key)}"])::after{{content:"{_css_text(web_help(option))}"}}'
        for key, option in _BY_WEB_KEY.items()
        if key in fields and not option.switch
    ]
    if not rules:
        return ""
    return "\n".join([f"{_FIELD}::after{{{_HELP_STYLE}}}", *rules])


def _css_text(text: str) -> str:
    """``text`` inside a CSS string in a <style> element: quotes, backslashes and ``<`` escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ").replace("\n", "\\a ")


def form_options(form: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A posted form's ``(name, value)`` pairs with our fields under their ``dest`` names again."""
    return [(_dest_of(name), value) for name, value in form]


def _dest_of(name: str) -> str:
    option = _BY_WEB_KEY.get(name)
    return option.dest if option is not None else name


def _shown(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return value


def form_problem(environment: Any, form: Mapping[str, str]) -> str | None:
    """Why the test the form asks for cannot start (None: it can)."""
    host_problem = _host_problem(environment, str(form.get("host", "")).strip())
    if host_problem is not None:
        return host_problem
    merged = _merged(environment.parsed_options, form)
    try:
        options = AIOptions.from_parsed(merged)
        if options.dialect:
            resolve_dialect(options.dialect)
        outputs = (("--ai-summary-json", options.summary_json), ("--ai-report-html", options.report_html))
        for flag, path in outputs:
            if path:
                ensure_writable(flag, path)
    except ConfigurationError as exc:
        return str(exc)
    return _shape_problem(environment, merged)


def _merged(parsed: Any, form: Mapping[str, str]) -> argparse.Namespace:
    """``parsed_options`` as they will be once Locust copied the form's text into them."""
    values = dict(vars(parsed)) if parsed is not None else {}
    for dest, option in _BY_DEST.items():
        if dest not in form:
            continue
        text = str(form[dest])
        values[dest] = text.strip().lower() in _TRUE if option.switch else text
    return argparse.Namespace(**values)


def _host_problem(environment: Any, typed_host: str) -> str | None:
    host = typed_host or environment.host
    classes: list[Any] = [cls for cls in _user_classes(environment) if is_ai_user_class(cls)]
    try:
        if host:
            check_host(host, "Host")
            return None
        for cls in classes:
            if cls.host:
                check_host(cls.host, f"{cls.__name__}.host")
    except ConfigurationError as exc:
        return str(exc)
    missing = sorted({cls.__name__ for cls in classes if not cls.host})
    if missing:
        return (
            f"No host for {', '.join(missing)}: type the API's base URL in Host, e.g. "
            "http://127.0.0.1:8000 for locust-aiapi-mock."
        )
    return None


def _shape_problem(environment: Any, merged: argparse.Namespace) -> str | None:
    shape = environment.shape_class
    if isinstance(shape, AIShape):
        try:
            shape.plan(merged)
        except ValueError as exc:
            return str(exc)
    return None
