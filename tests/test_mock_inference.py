"""The mock reacts like an inference server: prefill time, prompt-cache hits, decode slowdown, RPM/TPM."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from locust_aiapi.mock import MockProcess
from locust_aiapi.mock._config import MockConfig
from locust_aiapi.mock._errors import ApiError
from locust_aiapi.mock._inference import BLOCK_CHARS, BLOCK_TOKENS, PrefixCache, decode_scale, prefill_s
from locust_aiapi.mock._ratelimits import RateLimits

WORD = "abc "  # four characters: one token to the mock


def _post(
    url: str, prompt: str, stream: bool, max_tokens: int = 4
) -> tuple[int, dict[str, str], float, bytes]:
    """Status, headers, seconds to the first content chunk (streams) or to the body, and the body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "stream": stream}  # fmt: skip
    start = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    headers = {k.lower(): v for k, v in response.getheaders()}
    first_s, data = time.perf_counter() - start, b""
    if stream and response.status == 200:
        while line := response.readline():
            data += line
            if b'"content":"' in line and b'"content":""' not in line:
                first_s = time.perf_counter() - start
                break
    data += response.read()
    connection.close()
    return response.status, headers, first_s, data


def test_prefill_and_decode_arithmetic() -> None:
    config = MockConfig(prefill_tokens_per_s=1000.0, decode_slowdown=0.1, decode_capacity=5)
    assert prefill_s(config, 2000, 0) == pytest.approx(2.0)
    assert prefill_s(config, 2000, 1500) == pytest.approx(0.5)
    assert prefill_s(MockConfig(), 2000, 0) == 0.0
    assert [decode_scale(config, n) for n in (0, 1, 2, 5, 50)] == pytest.approx([1.0, 1.0, 1.1, 1.4, 1.4])


def test_the_prefix_cache_hits_leading_blocks_only_and_forgets_the_oldest() -> None:
    cache = PrefixCache(capacity=8)
    shared = "s" * (BLOCK_CHARS * 3)
    assert cache.cached_tokens(shared + "a" * BLOCK_CHARS) == 0
    assert cache.cached_tokens(shared + "b" * BLOCK_CHARS) == 3 * BLOCK_TOKENS
    assert cache.cached_tokens("x" + shared) == 0  # a different first block: nothing after it matches
    for n in range(8):
        cache.cached_tokens(str(n) * BLOCK_CHARS)
    assert cache.cached_tokens(shared) == 0  # evicted by eight newer blocks


def test_rate_limit_buckets_refill_over_a_minute() -> None:
    now = [0.0]
    limits = RateLimits(rpm=0, tpm=600, clock=lambda: now[0])
    for _ in range(6):
        limits.admit(100)
    with pytest.raises(ApiError, match="TPM") as refused:
        limits.admit(100)
    assert dict(refused.value.headers)["retry-after"] == "10"  # 100 tokens at 10 tokens/s
    now[0] = 10.0
    limits.admit(100)
    assert dict(limits.headers())["x-ratelimit-remaining-tokens"] == "0"


def test_ttft_grows_linearly_with_prompt_tokens() -> None:
    lengths = (500, 2000, 4000, 8000)
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--prefill-tokens-per-s", "20000",
                      "--prompt-cache-blocks", "0"]) as mock:  # fmt: skip
        measured = {n: min(_post(mock.url, WORD * n, True)[2] for _ in range(3)) for n in lengths}
    # Never earlier than TTFT plus prefill; the request's own cost (a few ms on a busy machine) adds a
    # constant, so linearity is checked on the slope, not as a ratio that a constant breaks at short prompts.
    for n in lengths:
        expected_s = 0.005 + n / 20_000
        assert expected_s <= measured[n] < expected_s + 0.020, (n, measured)
    slope = (measured[lengths[-1]] - measured[lengths[0]]) / (lengths[-1] - lengths[0])
    assert slope == pytest.approx(1 / 20_000, rel=0.10), measured


def test_a_repeated_prefix_is_prefilled_once() -> None:
    shared = WORD * 6000
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--prefill-tokens-per-s", "20000"]) as mock:
        cold = _post(mock.url, shared + "first question", True)[2]
        warm = _post(mock.url, shared + "second question", True)[2]
    assert cold > 0.3 and warm < 0.1, (cold, warm)


def test_inter_token_latency_grows_with_concurrent_streams() -> None:
    def e2e_s(mock: MockProcess) -> float:
        start = time.perf_counter()
        _post(mock.url, "hi", True, max_tokens=40)
        return time.perf_counter() - start

    with MockProcess(["--ttft-ms", "1", "--itl-ms", "10", "--output-tokens", "40",
                      "--decode-slowdown", "0.25"]) as mock:  # fmt: skip
        alone = e2e_s(mock)
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda _: e2e_s(mock), range(8)))
    # alone: 39 gaps of 10 ms; eight at once: each gap up to 1 + 0.25 * 7 = 2.75 times longer
    assert 0.35 < alone < 0.6
    assert max(together) > 2.0 * alone


def test_429s_start_at_the_configured_tpm() -> None:
    prompt = WORD * 60  # 60 prompt tokens + max_tokens 40: 100 tokens a request
    with MockProcess(["--ttft-ms", "1", "--itl-ms", "0", "--tpm", "1000", "--rpm", "1000"]) as mock:
        answers = [_post(mock.url, prompt, False, max_tokens=40) for _ in range(13)]
    statuses = [status for status, *_ in answers]
    assert statuses == [200] * 10 + [429] * 3  # 1,000 tokens, then the refill (16.7/s) is not enough
    remaining = [int(headers["x-ratelimit-remaining-tokens"]) for _, headers, *_ in answers[:10]]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] < 100
    refused = answers[10][1]
    assert refused["x-ratelimit-limit-tokens"] == "1000" and refused["x-ratelimit-limit-requests"] == "1000"
    assert 1 <= int(refused["retry-after"]) <= 7  # the seconds until 100 tokens have come back
    assert b"TPM" in answers[10][3]
