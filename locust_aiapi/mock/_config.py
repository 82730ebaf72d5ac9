"""Every knob of the mock server, validated once, in one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass

PROG = "locust-aiapi-mock"  # the command, in its messages


class MockConfigError(ValueError):
    """A configuration value is out of range; `option` names the CLI flag that carries it."""

    def __init__(self, field_name: str, reason: str, option: str | None = None) -> None:
        self.field_name = field_name
        self.option = option or "--" + _OPTION_NAMES.get(field_name, field_name.replace("_", "-"))
        self.reason = reason
        super().__init__(f"{self.option}: {reason}")


# Fields whose CLI flag is not simply the field name with dashes.
_OPTION_NAMES = {"record_path": "record"}


@dataclass(frozen=True)
class MockConfig:
    """Configuration of one mock server; field `foo_bar` is CLI option `--foo-bar`.

    Times are milliseconds unless the name says otherwise; fault rates are probabilities in [0, 1]
    drawn per request from `random.Random(seed)`.
    """

    bind: str = "127.0.0.1"
    port: int = 8000
    ttft_ms: float = 200.0
    ttft_jitter_ms: float = 0.0
    itl_ms: float = 20.0
    itl_jitter_ms: float = 0.0
    output_tokens: int = 64
    output_tokens_jitter: int = 0
    tokens_per_chunk: int = 1
    max_concurrency: int = 0
    max_queue: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_stream_error: float = 0.0
    rate_truncate: float = 0.0
    tool_call_rate: float = 1.0  # share of answers to an offer of tools that call one (see _tools)
    retry_after_s: float = 1.0
    embedding_latency_ms: float = 20.0
    ratelimit_limit_requests: int = 10_000
    # the inference-server model (see _inference and _ratelimits); 0 turns each off
    prefill_tokens_per_s: float = 0.0
    prompt_cache_blocks: int = 65_536
    decode_slowdown: float = 0.0
    decode_capacity: int = 0
    rpm: int = 0
    tpm: int = 0
    api_key: str | None = None
    record_path: str | None = None
    ready_file: str | None = None
    seed: int = 0
    tls_cert: str | None = None
    tls_key: str | None = None

    def __post_init__(self) -> None:
        _check_ranges(self)
        rates = self.rate_429 + self.rate_500 + self.rate_stream_error + self.rate_truncate
        if rates > 1.0 + 1e-9:
            option = "--rate-429 + --rate-500 + --rate-stream-error + --rate-truncate"
            raise MockConfigError("rate_429", f"fault rates add up to {rates:g}, more than 1", option)


_NON_NEGATIVE = (
    "ttft_ms",
    "ttft_jitter_ms",
    "itl_ms",
    "itl_jitter_ms",
    "output_tokens_jitter",
    "max_concurrency",
    "max_queue",
    "retry_after_s",
    "embedding_latency_ms",
    "ratelimit_limit_requests",
    "prefill_tokens_per_s",
    "prompt_cache_blocks",
    "decode_slowdown",
    "decode_capacity",
    "rpm",
    "tpm",
)
_AT_LEAST_ONE = ("output_tokens", "tokens_per_chunk")
_PROBABILITIES = ("rate_429", "rate_500", "rate_stream_error", "rate_truncate", "tool_call_rate")


def _check_ranges(config: MockConfig) -> None:
    for name in _NON_NEGATIVE:
        if not getattr(config, name) >= 0:  # `not >=` also rejects NaN
            raise MockConfigError(name, f"must be >= 0, got {getattr(config, name)}")
    for name in _AT_LEAST_ONE:
        if getattr(config, name) < 1:
            raise MockConfigError(name, f"must be >= 1, got {getattr(config, name)}")
    for name in _PROBABILITIES:
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise MockConfigError(name, f"must be a probability between 0 and 1, got {getattr(config, name)}")
    if not 0 <= config.port <= 65535:
        raise MockConfigError("port", f"must be between 0 and 65535, got {config.port}")
    if (config.tls_cert is None) != (config.tls_key is None):
        missing = "tls_key" if config.tls_key is None else "tls_cert"
        raise MockConfigError(missing, "--tls-cert and --tls-key go together")
    if config.api_key == "":
        raise MockConfigError("api_key", "must not be empty")
