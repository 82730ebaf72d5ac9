"""The `locust-aiapi-mock` command line: options map one-to-one onto `MockConfig` fields."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

import gevent
from gevent.event import Event

from ._config import PROG, MockConfig, MockConfigError
from ._limits import open_files_warning, raise_open_files_limit, tune_garbage_collector
from ._server import MockServer

_DEFAULTS = MockConfig()

# (flag, MockConfig field, type, help); defaults come from MockConfig.
_OPTIONS: tuple[tuple[str, str, type, str], ...] = (
    ("--bind", "bind", str, "address to listen on"),
    ("--port", "port", int, "TCP port; 0 picks a free port"),
    ("--ttft-ms", "ttft_ms", float, "time to first content chunk, from the end of the request body"),
    ("--ttft-jitter-ms", "ttft_jitter_ms", float, "uniform ± jitter on the TTFT"),
    ("--itl-ms", "itl_ms", float, "gap between consecutive content chunks"),
    ("--itl-jitter-ms", "itl_jitter_ms", float, "uniform ± jitter on each gap"),
    ("--output-tokens", "output_tokens", int, "tokens per answer (capped by the request's max_tokens)"),
    ("--output-tokens-jitter", "output_tokens_jitter", int, "uniform ± jitter on the answer length"),
    ("--tokens-per-chunk", "tokens_per_chunk", int, "tokens carried by each content chunk"),
    (
        "--max-concurrency",
        "max_concurrency",
        int,
        "concurrent generations; excess requests queue (0 = unlimited)",
    ),
    ("--max-queue", "max_queue", int, "queued requests before answering 429 (0 = unlimited)"),
    ("--rate-429", "rate_429", float, "probability of an injected 429 rate-limit error"),
    ("--rate-500", "rate_500", float, "probability of an injected 500 server error"),
    ("--rate-stream-error", "rate_stream_error", float, "probability of an error event inside a stream"),
    ("--rate-truncate", "rate_truncate", float, "probability of a stream cut short without [DONE]"),
    (
        "--tool-call-rate",
        "tool_call_rate",
        float,
        "share of answers to a request offering tools that call one (not after tool results)",
    ),
    ("--retry-after-s", "retry_after_s", float, "Retry-After sent with 429 answers"),
    ("--embedding-latency-ms", "embedding_latency_ms", float, "latency of an embeddings request"),
    ("--ratelimit-limit-requests", "ratelimit_limit_requests", int, "value of x-ratelimit-limit-requests"),
    ("--prefill-tokens-per-s", "prefill_tokens_per_s", float, "TTFT adds prompt tokens / this (0 = off)"),
    ("--prompt-cache-blocks", "prompt_cache_blocks", int, "16-token prompt blocks the prefix cache keeps"),
    ("--decode-slowdown", "decode_slowdown", float, "ITL grows by this fraction per other active stream"),
    ("--decode-capacity", "decode_capacity", int, "active streams beyond which ITL grows no more (0 = none)"),
    ("--rpm", "rpm", int, "chat requests per minute before 429 + Retry-After (0 = unlimited)"),
    ("--tpm", "tpm", int, "chat tokens (prompt + max_tokens) per minute before 429 (0 = unlimited)"),
    ("--api-key", "api_key", str, "require 'Authorization: Bearer KEY' on /v1/ (x-api-key: /v1/messages)"),
    ("--record", "record_path", str, "write a JSON line of ground-truth timestamps per API request"),
    ("--ready-file", "ready_file", str, "write the base URL to PATH once listening"),
    ("--seed", "seed", int, "seed of the random generator behind jitter, faults and token text"),
    ("--tls-cert", "tls_cert", str, "serve HTTPS with this PEM certificate chain (needs --tls-key)"),
    ("--tls-key", "tls_key", str, "PEM private key of --tls-cert"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr and exit code 2, without the usage block."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="OpenAI-compatible mock AI API server: realistic streaming timing, queueing, faults.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for flag, field_name, value_type, help_text in _OPTIONS:
        metavar = "PATH" if field_name in ("record_path", "ready_file", "tls_cert", "tls_key") else None
        parser.add_argument(
            flag,
            dest=field_name,
            type=value_type,
            default=getattr(_DEFAULTS, field_name),
            metavar=metavar,
            help=help_text,
        )
    return parser


def parse_config(argv: Sequence[str] | None = None) -> MockConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return MockConfig(**vars(args))
    except MockConfigError as error:
        parser.error(f"argument {error.option}: {error.reason}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mock until SIGTERM or SIGINT; returns the process exit code."""
    config = parse_config(argv)
    warning = open_files_warning(raise_open_files_limit())
    if warning is not None:
        print(f"{PROG}: {warning}", file=sys.stderr, flush=True)
    stopping = Event()
    handlers = [gevent.signal_handler(signum, stopping.set) for signum in (signal.SIGTERM, signal.SIGINT)]
    server = MockServer(config)
    try:
        url = server.start()
    except OSError as error:
        print(f"{PROG}: error: cannot start: {error}", file=sys.stderr)
        return 1
    try:
        tune_garbage_collector()
        print(f"locust-aiapi-mock listening on {url}", flush=True)
        stopping.wait()
    finally:
        for handler in handlers:
            handler.cancel()
        server.stop()
    return 0
