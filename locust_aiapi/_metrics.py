"""Metrics derived from a :class:`RequestRecord` by pure functions.

Each returns ``None`` when the metric is undefined for that request (a failed request has no
TTFT, one output token has no inter-token latency). Units are in the names.

Definitions (also in the README):

- ``ttft_ms``: request start -> arrival of the first chunk that carried a token
  (content, reasoning or tool-call text). Role-only, empty and filter chunks do not count.
- ``ttfc_ms``: request start -> first chunk carrying visible content (reasoning excluded).
- ``itl_ms``: (last-token time - first-token time) / (output tokens - 1).
- ``tpot_ms``: (end of stream - first-token time) / (output tokens - 1); like ITL but it also
  pays for whatever follows the last token (the usage chunk, ``[DONE]``).
- ``e2e_ms``: request start -> end of the response body.
- ``output_tokens_per_s``: (output tokens - 1) / (last-token time - first-token time), the
  request's decode rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from ._records import RequestRecord

__all__ = [
    "RecordMetrics",
    "chunk_gaps_ms",
    "e2e_ms",
    "end_epoch_s",
    "itl_ms",
    "output_tokens_per_s",
    "time_to_headers_ms",
    "tpot_ms",
    "ttfc_ms",
    "ttft_ms",
]


def _since_start_ms(record: RequestRecord, stamp_s: float | None) -> float | None:
    if stamp_s is None:
        return None
    return (stamp_s - record.start_s) * 1000.0


def time_to_headers_ms(record: RequestRecord) -> float | None:
    return _since_start_ms(record, record.headers_s)


def ttft_ms(record: RequestRecord) -> float | None:
    return _since_start_ms(record, record.first_token_s)


def ttfc_ms(record: RequestRecord) -> float | None:
    return _since_start_ms(record, record.first_content_s)


def e2e_ms(record: RequestRecord) -> float:
    return (record.end_s - record.start_s) * 1000.0


def end_epoch_s(record: RequestRecord) -> float:
    """Wall-clock end of the request: its start's epoch plus its (never negative) E2E span."""
    return record.start_epoch_s + max(0.0, record.end_s - record.start_s)


def _decode_span(record: RequestRecord, until_s: float | None) -> tuple[float, int] | None:
    """(span in seconds from first token to ``until_s``, output tokens) when defined."""
    tokens = record.output_tokens
    if record.first_token_s is None or until_s is None or tokens is None or tokens < 2:
        return None
    return until_s - record.first_token_s, tokens


def itl_ms(record: RequestRecord) -> float | None:
    span = _decode_span(record, record.last_token_s)
    if span is None:
        return None
    seconds, tokens = span
    return seconds * 1000.0 / (tokens - 1)


def tpot_ms(record: RequestRecord) -> float | None:
    span = _decode_span(record, record.end_s if record.first_token_s is not None else None)
    if span is None:
        return None
    seconds, tokens = span
    return seconds * 1000.0 / (tokens - 1)


def output_tokens_per_s(record: RequestRecord) -> float | None:
    span = _decode_span(record, record.last_token_s)
    if span is None or span[0] <= 0.0:
        return None
    seconds, tokens = span
    return (tokens - 1) / seconds


@dataclass(frozen=True, slots=True)
class RecordMetrics:
    """The metrics of one final record, derived once (``of``) for every aggregate it feeds."""

    ttft_ms: float | None
    ttfc_ms: float | None
    itl_ms: float | None
    tpot_ms: float | None
    e2e_ms: float
    output_tokens_per_s: float | None
    end_epoch_s: float

    @classmethod
    def of(cls, record: RequestRecord) -> RecordMetrics:
        return cls(
            ttft_ms(record),
            ttfc_ms(record),
            itl_ms(record),
            tpot_ms(record),
            e2e_ms(record),
            output_tokens_per_s(record),
            end_epoch_s(record),
        )


def chunk_gaps_ms(record: RequestRecord) -> list[float]:
    """Gaps between consecutive token-carrying chunks, in arrival order."""
    times = record.token_chunk_times_s
    return [(b - a) * 1000.0 for a, b in pairwise(times)]
