"""The ``--ai-*`` options: one table of definitions, and :class:`AIOptions`, their typed view.

Every module reads our options through :class:`AIOptions` only. Adding an option is one row of
:data:`OPTIONS` and one field of :class:`AIOptions` (a test checks they match).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _option_types as types
from ._errors import ConfigurationError
from ._thresholds import parse_threshold, split_thresholds

__all__ = ["OPTIONS", "AIOptions", "Option", "add_arguments"]


@dataclass(frozen=True, slots=True)
class Option:
    """One ``--ai-*`` option: how Locust's parser shows it, and which :class:`AIOptions` field it fills."""

    flag: str
    field: str
    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    switch: bool = False  # a flag without a value (store_true)
    negate: bool = False  # a switch that turns its field off (--ai-no-...)
    repeat: bool = False  # may be given several times (append)
    web_ui: bool = True  # in the web UI's form (False: read once at start, a form value would be ignored)
    label: str = ""  # what the web UI's form says, in words

    @property
    def env_var(self) -> str:
        return self.flag.lstrip("-").upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    # what is sent
    Option("--ai-api-key", "api_key", label="API key",
           web_ui=False,  # the web UI would echo its value into the page
           help="API key, sent the way the dialect wants it (OpenAI: 'Authorization: Bearer ...'). Also "
           "read from OPENAI_API_KEY. Never printed or reported."),
    Option("--ai-model", "model", label="Chat model",
           help="Chat model for every AIChatUser (overrides the class attribute 'model')."),
    Option("--ai-embedding-model", "embedding_model", label="Embedding model",
           help="Embedding model (overrides the class attribute 'embedding_model')."),
    Option("--ai-dialect", "dialect", label="API dialect", metavar="NAME",
           help="API dialect for every AI user (overrides the class attribute 'dialect'), e.g. openai."),
    # the workload (see _prompts and _datasets)
    Option("--ai-dataset", "dataset", label="Workload: dataset (path)", web_ui=False, metavar="PATH",
           help="Prompts from a file: .jsonl (prompt / messages / turns, optional max_tokens, system, name), "
           ".json (ShareGPT conversations), .csv (a 'prompt' column) or text (one prompt per line). Read "
           "by self.next_prompt() / self.next_conversation(); overrides the class attribute 'prompts'."),
    Option("--ai-prompt-tokens", "prompt_tokens", label="Workload: prompt tokens",
           type=types.distribution_text, metavar="SPEC",
           help="Synthetic prompts of this many tokens, sampled per request: 512, uniform:100-1000, "
           "normal:512,128, lognormal:MU,SIGMA or choice:128,512,2048 (one word per token, see README)."),
    Option("--ai-output-tokens", "output_tokens", label="Workload: output tokens (max_tokens)",
           type=types.distribution_text, metavar="SPEC",
           help="max_tokens per request, sampled like --ai-prompt-tokens (for exact lengths add the "
           "server's knob, e.g. vLLM's ignore_eos, to extra_body)."),
    Option("--ai-shared-prefix-tokens", "shared_prefix_tokens", label="Workload: shared prefix tokens",
           type=types.non_negative_int,
           help="Synthetic prompts start with the same prefix of N tokens (prompt-cache behaviour), added "
           "to --ai-prompt-tokens."),
    Option("--ai-seed", "seed", label="Workload: seed", type=types.non_negative_int,
           help="Seed of the synthetic lengths, texts and the shuffle: the same seed, the same prompts."),
    Option("--ai-prompt-order", "prompt_order", label="Workload: prompt order",
           type=types.prompt_order, metavar="ORDER",
           help="sequential (default) or shuffle (by --ai-seed). Each worker takes a disjoint share by "
           "its index; a share that runs out starts again."),
    Option("--ai-api-version", "api_version", label="API version (Azure)", metavar="VERSION",
           help="API version the dialect puts in its URL (azure-openai: api-version, default 2024-10-21). "
           "Overrides the class attribute 'api_version'."),
    # TLS
    Option("--ai-ca-bundle", "ca_bundle", label="TLS: CA bundle (path)", web_ui=False, metavar="PATH",
           help="Verify the server's certificate with this PEM bundle instead of the system CA store."),
    Option("--ai-insecure", "insecure", label="TLS: do not verify certificates", web_ui=False, switch=True,
           help="Do not verify TLS certificates (the API key goes to whoever answers). One warning at "
           "start."),
    Option("--ai-tokenizer", "tokenizer", label="Tokenizer for answers without usage",
           web_ui=False, type=types.tokenizer_name, metavar="ENCODING",
           help="When a server sends no usage, count the text received with this tokenizer encoding "
           "(needs the 'tokenizer' extra: bpe-openai), else one token per token delta. 'off' disables it. "
           "Default o200k_base."),
    # retries
    Option("--ai-max-retries", "max_retries", label="Retries: how many", type=types.non_negative_int,
           help="Retries after 429, 5xx or connection errors, with exponential back-off and jitter that "
           "honours Retry-After. Default 0 (off)."),
    Option("--ai-retry-base-delay", "retry_base_delay_s", label="Retries: base delay (s)",
           type=types.non_negative_seconds,
           help="Back-off base in seconds: attempt n waits base*2^n + U(0, base). Default 1."),
    Option("--ai-retry-max-delay", "retry_max_delay_s", label="Retries: longest delay (s)",
           type=types.non_negative_seconds,
           help="Upper bound of one back-off delay in seconds, Retry-After included. Default 30."),
    # bounds on what a server may make us wait for or hold
    Option("--ai-ttft-timeout", "ttft_timeout_s", label="Timeout: first token (s)",
           type=types.non_negative_seconds,
           help="Streamed chat: seconds from sending a request to its first token; then the request fails "
           "as 'timeout' (\"no token within N s\"). Comments and keep-alive bytes are no progress. 0: off. "
           "Default 60."),
    Option("--ai-request-timeout", "request_timeout_s", label="Timeout: whole request (s)",
           type=types.non_negative_seconds,
           help="Seconds one attempt may take from sending to the end of the answer; then it fails as "
           "'timeout'. 0: off. Default 600. (A user's network_timeout, 300 s, bounds each silent wait.)"),
    Option("--ai-max-body-mib", "max_body_mib", label="Limit: non-streamed body (MiB)",
           web_ui=False, type=types.positive_float,
           help="Largest non-streamed answer (chat completion, embeddings) in MiB; a larger one fails as "
           "'response_too_large' and is not read. Default 64."),
    # outputs
    Option("--ai-requests-jsonl", "requests_jsonl", label="Output: requests JSONL (path)",
           web_ui=False, metavar="PATH",
           help="Write one JSON line per AI request (timings, tokens, outcome) to PATH."),
    Option("--ai-summary-json", "summary_json", label="Output: summary JSON (path)", metavar="PATH",
           help="Write the LLM summary (percentiles, tokens, failures by kind) as JSON at the end of a run."),
    Option("--ai-report-html", "report_html", label="Output: HTML report (path)", metavar="PATH",
           help="Write the self-contained LLM HTML report to PATH at the end."),
    Option("--ai-no-summary", "print_summary", label="Output: no console summary", switch=True, negate=True,
           help="Do not print the LLM summary table at the end of a run."),
    Option("--ai-ttft-stats", "ttft_stats", label="TTFT rows in Locust's statistics", switch=True,
           help="Also add a 'TTFT' row per request name to Locust's statistics (web UI, CSV, HTML). Off by "
           "default: each row counts as requests, so Locust's RPS, failure ratio and Aggregated row (and "
           "locust_requests_total) then mix TTFT samples with real calls."),
    Option("--ai-pricing", "pricing", label="Cost: pricing file (path)", web_ui=False, metavar="PATH",
           help='JSON file of model -> US$ per million tokens (a number, or {"input": x, "output": y}), '
           "added to the built-in prices for the cost estimate."),
    # Prometheus
    Option("--ai-metrics-port", "metrics_port", label="Prometheus: port", web_ui=False, type=types.port,
           help="Prometheus /metrics port when there is no web UI (headless); with the web UI, /metrics is "
           "also served on the web UI's port. Master or single process only. Default 9646."),
    Option("--ai-metrics-host", "metrics_host", label="Prometheus: address", web_ui=False,
           help="Address the headless /metrics endpoint binds to. Default 127.0.0.1."),
    Option("--ai-no-metrics", "metrics_enabled", label="Prometheus: off",
           web_ui=False, switch=True, negate=True,
           help="Do not serve Prometheus metrics."),
    Option("--ai-no-gc-freeze", "gc_freeze", label="GC: no freeze", web_ui=False, switch=True, negate=True,
           help="Leave the garbage collector alone: no gc.freeze of the objects alive once users are spawned "
           "(full collections then pause every stream ~0.1 ms per user), CPython's young threshold."),
    Option("--ai-metrics-max-names", "metrics_max_names", label="Prometheus: most names",
           web_ui=False, type=types.positive_int,
           help="Most distinct request names (and, separately, models) labelled in /metrics; later ones are "
           'merged into name="other" (model="other"). Default 100.'),
    # pass/fail
    Option("--ai-threshold", "thresholds", label="Thresholds, e.g. ttft_ms:p95<3000,error_rate<0.05",
           type=types.thresholds_text, metavar="EXPR", repeat=True,
           help="Pass/fail threshold, repeatable (or several separated by ','): "
           "[NAME:]METRIC[:STAT] OP NUMBER, e.g. ttft_ms:p95<3000, chat:e2e_ms:p99<5000, error_rate<0.05, "
           "output_tokens_per_s>200. Any failure: exit code 3; all pass: exit code 0."),
    Option("--ai-max-client-lag-ms", "max_client_lag_ms", label="Client lag limit (ms)",
           type=types.positive_float,
           help="Mark the run 'client_bound' (summary, console, report) when the load generator's client lag "
           "p99 (how long arrived bytes waited to be read: kernel receive stamps, else an event-loop probe) "
           "exceeds this many ms; then add workers. Default 5."),
    Option("--ai-slo-ttft-ms", "slo_ttft_ms", label="SLO: TTFT (ms)", type=types.positive_float,
           help="Per-request SLO on TTFT (ms): goodput."),
    Option("--ai-slo-itl-ms", "slo_itl_ms", label="SLO: ITL (ms)", type=types.positive_float,
           help="Per-request SLO on inter-token latency (ms): goodput."),
    Option("--ai-slo-e2e-ms", "slo_e2e_ms", label="SLO: E2E (ms)", type=types.positive_float,
           help="Per-request SLO on end-to-end latency (ms): goodput."),
    # load shapes and the open model
    Option("--ai-stages", "stages", label="Shape: stages, e.g. 2m:300,5m:300,2m:0",
           type=types.stages_text, metavar="SPEC",
           help="StagesShape: DURATION:USERS ramps, e.g. 2m:300,5m:300,2m:0."),
    Option("--ai-steps", "steps", label="Shape: sweep steps (users), e.g. 50,100,200",
           type=types.steps_text, metavar="LIST",
           help="StepSweepShape: concurrency steps, e.g. 50,100,200."),
    Option("--ai-step-duration", "step_duration", label="Shape: step duration, e.g. 60s",
           type=types.duration_text, metavar="DURATION",
           help="StepSweepShape: how long each step is held, e.g. 60s."),
    Option("--ai-spike", "spike", label="Shape: spike, e.g. base=50,peak=500",
           type=types.spike_text, metavar="SPEC",
           help="SpikeShape: base=50,peak=500[,before=30s,hold=1m,after=30s,rate=USERS_PER_S]."),
    Option("--ai-arrival-rate", "arrival_rate_per_s", label="Open model: starts per second",
           type=types.positive_float,
           help="ArrivalRateUser: iterations started per second (whole test, split across workers)."),
    Option("--ai-arrival-poisson", "arrival_poisson", label="Open model: Poisson arrivals", switch=True,
           help="ArrivalRateUser: Poisson arrivals, not a fixed interval."),
    Option("--ai-arrival-max-delay", "arrival_max_delay_s", label="Open model: longest start delay (s)",
           type=types.non_negative_seconds,
           help="ArrivalRateUser: seconds a due start may wait for a free user before it is dropped (0: drop "
           "at once, like k6). Default 1."),
)  # fmt: skip

_ENV_ALIASES = {"--ai-api-key": "OPENAI_API_KEY"}  # what the OpenAI SDK reads; AI_API_KEY is not read


def add_arguments(parser: Any) -> None:
    """Listener for ``events.init_command_line_parser``: every row of :data:`OPTIONS`.

    Locust's parser understands ``env_var=`` and ``include_in_web_ui=`` on ``add_argument`` itself, not on
    argument groups, so the options are added directly (they list under "Custom options").
    """
    for option in OPTIONS:
        settings: dict[str, Any] = {"help": option.help, "include_in_web_ui": option.web_ui}
        settings["env_var"] = _ENV_ALIASES.get(option.flag, option.env_var)
        if option.switch:
            settings.update(action="store_true", default=False)
        else:
            settings.update(default=None, type=option.type, metavar=option.metavar)
            if option.repeat:
                settings["action"] = "append"
        parser.add_argument(option.flag, **{k: v for k, v in settings.items() if v is not None})


@dataclass(frozen=True, slots=True)
class AIOptions:
    """Our options for one run, checked and typed. Defaults are what a run without ``--ai-*`` flags gets."""

    api_key: str | None = None
    model: str | None = None
    embedding_model: str | None = None
    dialect: str | None = None
    dataset: str | None = None
    prompt_tokens: str | None = None
    output_tokens: str | None = None
    shared_prefix_tokens: int = 0
    seed: int | None = None
    prompt_order: str = "sequential"
    api_version: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    tokenizer: str = "o200k_base"
    max_retries: int = 0
    retry_base_delay_s: float = 1.0
    retry_max_delay_s: float = 30.0
    ttft_timeout_s: float = 60.0
    request_timeout_s: float = 600.0
    max_body_mib: float = 64.0
    requests_jsonl: str | None = None
    summary_json: str | None = None
    report_html: str | None = None
    print_summary: bool = True
    ttft_stats: bool = False
    pricing: str | None = None
    metrics_port: int = 9646
    metrics_host: str = "127.0.0.1"
    metrics_enabled: bool = True
    metrics_max_names: int = 100
    gc_freeze: bool = True
    thresholds: tuple[str, ...] = ()
    max_client_lag_ms: float = 5.0
    slo_ttft_ms: float | None = None
    slo_itl_ms: float | None = None
    slo_e2e_ms: float | None = None
    stages: str | None = None
    steps: str | None = None
    step_duration: str | None = None
    spike: str | None = None
    arrival_rate_per_s: float | None = None
    arrival_poisson: bool = False
    arrival_max_delay_s: float | None = None

    @classmethod
    def from_parsed(cls, parsed: Any) -> AIOptions:
        """Read Locust's ``environment.parsed_options`` (None when Locust is used as a library).

        Values typed in the web UI's form arrive as text: they are checked with the same types as the
        command line. A bad one raises :class:`ConfigurationError` naming the option.
        """
        if parsed is None:
            return cls()
        values = {}
        for option in OPTIONS:
            value = _value(option, getattr(parsed, option.dest, None))
            if value is not None:
                values[option.field] = value
        options = cls(**values)
        _check_goodput_has_an_slo(options)
        return options

    def __repr__(self) -> str:  # keep the key out of any log line that prints the options
        shown = "set" if self.api_key else "unset"
        return f"AIOptions(api_key=<{shown}>, model={self.model!r}, max_retries={self.max_retries})"


def _check_goodput_has_an_slo(options: AIOptions) -> None:
    """A goodput threshold without an SLO could only ever read "no data": refused at start."""
    if options.slo_ttft_ms or options.slo_itl_ms or options.slo_e2e_ms:
        return
    for text in options.thresholds:
        if parse_threshold(text).metric == "goodput":
            raise ConfigurationError(
                f"--ai-threshold {text}: goodput is the share of requests that met the SLOs, and none is "
                "set: give --ai-slo-ttft-ms, --ai-slo-itl-ms and/or --ai-slo-e2e-ms"
            )


def _value(option: Option, raw: Any) -> Any:
    """The field's value for what the parser (or the web UI's form) left in ``parsed_options``."""
    if option.switch:
        on = raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
        return (not on) if option.negate else on
    if raw is None or raw == "" or raw == []:
        return None
    if option.repeat:
        texts = [raw] if isinstance(raw, str) else list(raw)
        return tuple(split_thresholds([_typed(option, text) for text in texts]))
    return _typed(option, raw)


def _typed(option: Option, raw: Any) -> Any:
    if option.type is None or not isinstance(raw, str):
        return raw
    try:
        return option.type(raw.strip())
    except argparse.ArgumentTypeError as exc:
        raise ConfigurationError(f"{option.flag}: {exc}") from None


FIELDS = frozenset(field.name for field in dataclasses.fields(AIOptions))
