from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from locust_aiapi import FailureKind, RetryPolicy
from locust_aiapi._retry import parse_retry_after


def test_retries_are_off_by_default() -> None:
    assert not RetryPolicy().should_retry(FailureKind.RATE_LIMITED, 0)


@pytest.mark.parametrize(
    ("kind", "retried"),
    [
        (FailureKind.RATE_LIMITED, True),
        (FailureKind.SERVER_ERROR, True),
        (FailureKind.CONNECTION_ERROR, True),
        (FailureKind.CLIENT_ERROR, False),
        (FailureKind.STREAM_ERROR, False),
        (FailureKind.TRUNCATED, False),
        (None, False),
    ],
)
def test_which_failures_are_retried(kind: FailureKind | None, retried: bool) -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.should_retry(kind, 0) is retried
    assert not policy.should_retry(kind, 2)


def test_backoff_doubles_with_jitter_below_one_base() -> None:
    policy = RetryPolicy(max_retries=5, base_delay_s=1.0, max_delay_s=100.0)
    rng = random.Random(1)
    for attempt in range(5):
        delay = policy.delay_s(attempt, None, rng)
        assert 2**attempt <= delay <= 2**attempt + 1.0


def test_backoff_is_capped_and_retry_after_is_a_lower_bound_under_the_cap() -> None:
    policy = RetryPolicy(max_retries=9, base_delay_s=1.0, max_delay_s=5.0)
    rng = random.Random(2)
    assert policy.delay_s(8, None, rng) == 5.0
    assert policy.delay_s(0, 4.5, rng) == 4.5
    assert policy.delay_s(0, 12.0, rng) == 5.0  # Retry-After included: the cap holds


@pytest.mark.parametrize("retry_after_s", [3600.0, 1e308, float("inf"), float("nan")])
def test_a_huge_or_non_finite_retry_after_never_waits_beyond_the_cap(retry_after_s: float) -> None:
    policy = RetryPolicy(max_retries=3, base_delay_s=0.1, max_delay_s=2.0)
    delay = policy.delay_s(0, retry_after_s, random.Random(3))
    assert 0.1 <= delay <= 2.0


@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity", "nan", "NaN"])
def test_retry_after_that_is_not_a_finite_number_is_ignored(text: str) -> None:
    assert parse_retry_after(text, 0.0) is None


def test_retry_after_huge_but_finite_is_kept_for_the_record() -> None:
    assert parse_retry_after("3600", 0.0) == 3600.0
    assert parse_retry_after("1e308", 0.0) == 1e308
    assert parse_retry_after("-5", 0.0) == 0.0


def test_retry_after_in_seconds_and_as_http_date() -> None:
    assert parse_retry_after("2", 0.0) == 2.0
    assert parse_retry_after(" 0.5 ", 0.0) == 0.5
    assert parse_retry_after(None, 0.0) is None
    assert parse_retry_after("soon", 0.0) is None
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)
    later = format_datetime(datetime(2026, 11, 27, 12, 0, 30, tzinfo=timezone.utc), usegmt=True)
    assert parse_retry_after(later, now.timestamp()) == pytest.approx(30.0)
