"""The deadlines of one attempt (pure), and how the options become the transport's limits."""

from __future__ import annotations

import pytest

from locust_aiapi import FailureKind
from locust_aiapi._limits import MIB, Deadlines, Limits
from locust_aiapi._options import AIOptions


def test_the_ttft_deadline_runs_until_the_first_token_and_the_request_deadline_to_the_end() -> None:
    deadlines = Deadlines(Limits(ttft_timeout_s=2.0, request_timeout_s=10.0), start_s=100.0, first_token=True)
    assert deadlines.next_s() == 102.0 and deadlines.expired(101.9) is None
    expired = deadlines.expired(102.0)
    assert expired is not None and expired.kind is FailureKind.TIMEOUT
    assert str(expired) == "no token within 2 s"
    deadlines.token_arrived()
    assert deadlines.next_s() == 110.0 and deadlines.expired(105.0) is None
    assert str(deadlines.expired(110.5)) == "request not complete within 10 s"


def test_non_streamed_attempts_and_timeouts_turned_off_have_no_ttft_deadline() -> None:
    assert Deadlines(Limits(), 0.0, first_token=False).next_s() == 600.0
    off = Deadlines(Limits(ttft_timeout_s=None, request_timeout_s=None), 0.0, first_token=True)
    assert off.next_s() is None and off.expired(1e9) is None
    assert off.wait_s(5.0, idle_s=300.0, first_byte_s=None) == 300.0
    assert off.wait_s(5.0, idle_s=None, first_byte_s=None) is None


def test_one_wait_is_the_soonest_of_idle_deadline_and_header_time() -> None:
    deadlines = Deadlines(Limits(ttft_timeout_s=60.0, header_time_s=10.0), start_s=0.0, first_token=True)
    assert deadlines.wait_s(1.0, idle_s=300.0, first_byte_s=None) == pytest.approx(59.0)
    assert deadlines.wait_s(1.0, idle_s=300.0, first_byte_s=0.5) == pytest.approx(9.5)
    assert deadlines.wait_s(70.0, idle_s=300.0, first_byte_s=None) == 0.001  # never 0: non-blocking
    header = deadlines.header_expired(10.6, first_byte_s=0.5)
    assert str(header) == "response headers not complete within 10 s of their first byte"


def test_options_become_limits_and_zero_turns_a_timeout_off() -> None:
    assert Limits.from_options(AIOptions()) == Limits()
    limits = Limits.from_options(AIOptions(ttft_timeout_s=0.0, request_timeout_s=5.0, max_body_mib=0.5))
    assert (limits.ttft_timeout_s, limits.request_timeout_s, limits.max_body_bytes) == (None, 5.0, MIB // 2)
