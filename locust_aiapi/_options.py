"""Command-line options (``--ai-*``), registered on Locust's own parser, and their typed view."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

__all__ = ["AIOptions", "add_arguments"]


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
        "--ai-no-summary",
        env_var="AI_NO_SUMMARY",
        action="store_true",
        default=False,
        help="Do not print the LLM summary table at the end of a run.",
    )


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
        )

    def __repr__(self) -> str:  # keep the key out of any log line that prints the options
        shown = "set" if self.api_key else "unset"
        return f"AIOptions(api_key=<{shown}>, model={self.model!r}, max_retries={self.max_retries})"
