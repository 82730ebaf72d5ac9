"""Locust's own statistics: one ``request`` event per AI call (plus a TTFT row when asked for).

What Locust counts is what the web UI's RPS, failure ratio, charts, CSV and the exit rule show, so each
AI call is one request there. ``--ai-ttft-stats`` adds a ``TTFT`` row per name, which Locust then also
counts as requests (its Aggregated row mixes them in).
"""

from __future__ import annotations

from typing import Any

from ._errors import AIRequestFailure
from ._metrics import e2e_ms, ttft_ms
from ._records import FailureKind, RequestKind, RequestRecord

__all__ = ["TTFT_REQUEST_TYPE", "fire_request_events"]

_REQUEST_TYPES = {RequestKind.CHAT: "CHAT", RequestKind.EMBEDDINGS: "EMBED"}
TTFT_REQUEST_TYPE = "TTFT"


def fire_request_events(environment: Any, context: Any, record: RequestRecord, ttft_stats: bool) -> None:
    exception = None
    if not record.ok:
        kind = record.failure_kind or FailureKind.PROTOCOL_ERROR
        exception = AIRequestFailure(kind, record.failure_message or "")
    request_event = environment.events.request
    request_event.fire(
        request_type=_REQUEST_TYPES[record.kind],
        name=record.name,
        response_time=e2e_ms(record),
        response_length=_response_length(record),
        exception=exception,
        context=context,
        response=None,
        start_time=record.start_epoch_s,
        url=None,
    )
    first_token_ms = ttft_ms(record)
    if record.ok and first_token_ms is not None and ttft_stats:
        request_event.fire(
            request_type=TTFT_REQUEST_TYPE,
            name=record.name,
            response_time=first_token_ms,
            response_length=0,
            exception=None,
            context=context,
            response=None,
            start_time=record.start_epoch_s,
            url=None,
        )


def _response_length(record: RequestRecord) -> int:
    tokens = record.output_tokens if record.kind is RequestKind.CHAT else record.prompt_tokens
    return tokens or 0
