"""Command-line options (``--ai-*``), registered on Locust's own parser, and their typed view."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigurationError
from ._specs import checked, parse_duration_s, parse_spike, parse_stages, parse_steps
from ._thresholds import parse_thresholds

__all__ = ["AIOptions", "add_arguments", "ensure_writable"]


def ensure_writable(option: str, path: str) -> None:
    """At start: the file of an output option can be written (its directory is created)."""
    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise ConfigurationError(f"cannot write {option} {path!r}: {exc.strerror or exc}") from None


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0.0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more, got 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {value}")
    return value


def add_arguments(parser: Any) -> None:
    """Listener for ``events.init_command_line_parser``."""
    # Locust's parser understands env_var= and include_in_web_ui= on add_argument itself, not on
    # argument groups, so the options are added directly (they list under "Custom options").
    group = parser
    group.add_argument(
        "--ai-api-key",
        env_var="OPENAI_API_KEY",
        default=None,
        include_in_web_ui=False,  # the web UI would echo its default value into the page
        help="API key sent as 'Authorization: Bearer ...'. Never printed or reported.",
    )
    group.add_argument(
        "--ai-model",
        env_var="AI_MODEL",
        default=None,
        help="Chat model for every AIChatUser (overrides the class attribute 'model').",
    )
    group.add_argument(
        "--ai-embedding-model",
        env_var="AI_EMBEDDING_MODEL",
        default=None,
        help="Embedding model (overrides the class attribute 'embedding_model').",
    )
    group.add_argument(
        "--ai-max-retries",
        env_var="AI_MAX_RETRIES",
        type=_non_negative_int,
        default=0,
        help="Retries after 429, 5xx or connection errors, with exponential back-off and jitter "
        "that honours Retry-After. Default 0 (off).",
    )
    group.add_argument(
        "--ai-retry-base-delay",
        env_var="AI_RETRY_BASE_DELAY",
        type=_non_negative_float,
        default=1.0,
        help="Back-off base in seconds: attempt n waits base*2^n + U(0, base). Default 1.",
    )
    group.add_argument(
        "--ai-retry-max-delay",
        env_var="AI_RETRY_MAX_DELAY",
        type=_non_negative_float,
        default=30.0,
        help="Upper bound of one back-off delay in seconds (Retry-After may exceed it). Default 30.",
    )
    group.add_argument(
        "--ai-requests-jsonl",
        env_var="AI_REQUESTS_JSONL",
        default=None,
        metavar="PATH",
        help="Write one JSON line per AI request (timings, tokens, outcome) to PATH.",
    )
    group.add_argument(
        "--ai-summary-json",
        env_var="AI_SUMMARY_JSON",
        default=None,
        metavar="PATH",
        help="Write the LLM summary (percentiles, tokens, failures by kind) as JSON at the end of a run.",
    )
    group.add_argument(
        "--ai-no-ttft-stats",
        env_var="AI_NO_TTFT_STATS",
        action="store_true",
        default=False,
        help="Do not add 'TTFT' rows to Locust's statistics (web UI, CSV, HTML).",
    )
    group.add_argument(
        "--ai-metrics-port",
        env_var="AI_METRICS_PORT",
        type=_port,
        default=9646,
        help="Prometheus /metrics port when there is no web UI (headless); with the web UI, /metrics "
        "is also served on the web UI's port. Master or single process only. Default 9646.",
    )
    group.add_argument(
        "--ai-metrics-host",
        env_var="AI_METRICS_HOST",
        default="127.0.0.1",
        help="Address the headless /metrics endpoint binds to. Default 127.0.0.1.",
    )
    group.add_argument(
        "--ai-no-metrics",
        env_var="AI_NO_METRICS",
        action="store_true",
        default=False,
        help="Do not serve Prometheus metrics.",
    )
    group.add_argument(
        "--ai-metrics-max-names",
        env_var="AI_METRICS_MAX_NAMES",
        type=_positive_int,
        default=100,
        help="Most distinct request names (and, separately, models) labelled in /metrics; later ones "
        'are merged into name="other" (model="other"). Default 100.',
    )
    group.add_argument(
        "--ai-no-summary",
        env_var="AI_NO_SUMMARY",
        action="store_true",
        default=False,
        help="Do not print the LLM summary table at the end of a run.",
    )
    for flag, env_var, settings in _RUN_OPTIONS:
        group.add_argument(flag, env_var=env_var, **settings)


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


# Load shapes, open model, SLOs, thresholds and the HTML report (locust_aiapi._shapes, _arrival,
# _goodput, _thresholds, _report). Spec options keep their text: it is parsed where it is used.
_RUN_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--ai-threshold", "AI_THRESHOLD", dict(
        action="append", type=checked(parse_thresholds), default=None, metavar="EXPR",
        help="Pass/fail threshold, repeatable (or several separated by ','): [NAME:]METRIC[:STAT] OP NUMBER, "
        "e.g. ttft_ms:p95<3000, chat:e2e_ms:p99<5000, error_rate<0.05, output_tokens_per_s>200. Any failure: "
        "exit code 3; all pass: exit code 0."),
    ),
    ("--ai-slo-ttft-ms", "AI_SLO_TTFT_MS", dict(
        type=_positive_float, default=None, help="Per-request SLO on TTFT (ms): goodput.")),
    ("--ai-slo-itl-ms", "AI_SLO_ITL_MS", dict(
        type=_positive_float, default=None, help="Per-request SLO on inter-token latency (ms): goodput.")),
    ("--ai-slo-e2e-ms", "AI_SLO_E2E_MS", dict(
        type=_positive_float, default=None, help="Per-request SLO on end-to-end latency (ms): goodput.")),
    ("--ai-report-html", "AI_REPORT_HTML", dict(
        default=None, metavar="PATH", help="Write the self-contained LLM HTML report to PATH at the end.")),
    ("--ai-pricing", "AI_PRICING", dict(
        default=None, metavar="PATH", help="JSON file of model -> US$ per million tokens (a number, or "
        "{\"input\": x, \"output\": y}), added to the built-in prices for the cost estimate.")),
    ("--ai-stages", "AI_STAGES", dict(
        type=checked(parse_stages), default=None, metavar="SPEC",
        help="StagesShape: DURATION:USERS ramps, e.g. 2m:300,5m:300,2m:0.")),
    ("--ai-steps", "AI_STEPS", dict(
        type=checked(parse_steps), default=None, metavar="LIST",
        help="StepSweepShape: concurrency steps, e.g. 50,100,200.")),
    ("--ai-step-duration", "AI_STEP_DURATION", dict(
        type=checked(parse_duration_s), default=None, metavar="DURATION",
        help="StepSweepShape: how long each step is held, e.g. 60s.")),
    ("--ai-spike", "AI_SPIKE", dict(
        type=checked(parse_spike), default=None, metavar="SPEC",
        help="SpikeShape: base=50,peak=500[,before=30s,hold=1m,after=30s,rate=USERS_PER_S].")),
    ("--ai-arrival-rate", "AI_ARRIVAL_RATE", dict(
        type=_positive_float, default=None,
        help="ArrivalRateUser: iterations started per second (whole test, split across workers).")),
    ("--ai-arrival-poisson", "AI_ARRIVAL_POISSON", dict(
        action="store_true", default=False, help="ArrivalRateUser: Poisson arrivals, not a fixed interval.")),
    ("--ai-arrival-max-delay", "AI_ARRIVAL_MAX_DELAY", dict(
        type=_non_negative_float, default=None,
        help="ArrivalRateUser: seconds a due start may wait for a free user before it is dropped (0: drop at "
        "once, like k6). Default 1.")),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AIOptions:
    api_key: str | None = None
    model: str | None = None
    embedding_model: str | None = None
    max_retries: int = 0
    retry_base_delay_s: float = 1.0
    retry_max_delay_s: float = 30.0
    requests_jsonl: str | None = None
    summary_json: str | None = None
    ttft_stats: bool = True
    print_summary: bool = True
    metrics_enabled: bool = True
    metrics_port: int = 9646
    metrics_host: str = "127.0.0.1"
    metrics_max_names: int = 100

    @classmethod
    def from_parsed(cls, parsed: Any) -> AIOptions:
        """Read Locust's ``environment.parsed_options`` (None when Locust is used as a library)."""
        if parsed is None:
            return cls()

        def get(name: str, default: Any) -> Any:
            value = getattr(parsed, name, default)
            return default if value is None else value

        return cls(
            api_key=get("ai_api_key", None) or None,
            model=get("ai_model", None) or None,
            embedding_model=get("ai_embedding_model", None) or None,
            max_retries=int(get("ai_max_retries", 0)),
            retry_base_delay_s=float(get("ai_retry_base_delay", 1.0)),
            retry_max_delay_s=float(get("ai_retry_max_delay", 30.0)),
            requests_jsonl=get("ai_requests_jsonl", None) or None,
            summary_json=get("ai_summary_json", None) or None,
            ttft_stats=not get("ai_no_ttft_stats", False),
            print_summary=not get("ai_no_summary", False),
            metrics_enabled=not get("ai_no_metrics", False),
            metrics_port=int(get("ai_metrics_port", 9646)),
            metrics_host=str(get("ai_metrics_host", "127.0.0.1")),
            metrics_max_names=int(get("ai_metrics_max_names", 100)),
        )

    def __repr__(self) -> str:  # keep the key out of any log line that prints the options
        shown = "set" if self.api_key else "unset"
        return f"AIOptions(api_key=<{shown}>, model={self.model!r}, max_retries={self.max_retries})"
