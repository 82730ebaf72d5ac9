"""``--ai-requests-jsonl``: one JSON line per AI request, nothing rounded, nothing dropped."""

from __future__ import annotations

from typing import IO, Any

import orjson

from . import _metrics
from ._records import RequestRecord

__all__ = ["JsonlWriter", "record_to_dict"]


def record_to_dict(record: RequestRecord, metrics: _metrics.RecordMetrics | None = None) -> dict[str, Any]:
    """The JSON form of a record: raw facts plus the derived metrics, times in ms from start."""
    start = record.start_s
    if metrics is None:
        metrics = _metrics.RecordMetrics.of(record)
    return {
        "start_time": record.start_epoch_s,
        "name": record.name,
        "kind": record.kind.value,
        "model": record.model,
        "served_model": record.served_model,
        "streamed": record.streamed,
        "outcome": record.outcome.value,
        "failure_kind": record.failure_kind.value if record.failure_kind else None,
        "failure_message": record.failure_message,
        "status_code": record.status_code,
        "request_id": record.request_id,
        "attempts": record.attempts,
        "retry_after_s": record.retry_after_s,
        "first_attempt_e2e_ms": record.first_attempt_e2e_ms,
        "time_to_headers_ms": _metrics.time_to_headers_ms(record),
        "ttft_ms": metrics.ttft_ms,
        "ttfc_ms": metrics.ttfc_ms,
        "itl_ms": metrics.itl_ms,
        "tpot_ms": metrics.tpot_ms,
        "e2e_ms": metrics.e2e_ms,
        "output_tokens_per_s": metrics.output_tokens_per_s,
        "output_tokens": record.output_tokens,
        "output_tokens_source": record.output_tokens_source.value if record.output_tokens_source else None,
        "prompt_tokens": record.prompt_tokens,
        "cached_prompt_tokens": record.cached_prompt_tokens,
        "cache_write_prompt_tokens": record.cache_write_prompt_tokens,
        "cache_write_1h_prompt_tokens": record.cache_write_1h_prompt_tokens,
        "requested_prompt_tokens": record.requested_prompt_tokens,
        "requested_output_tokens": record.requested_output_tokens,
        "conversation_id": record.conversation_id,
        "turn": record.turn,
        "finish_reason": record.finish_reason,
        "chunk_offsets_ms": [(t - start) * 1000.0 for t in record.token_chunk_times_s],
        "chunk_times_capped": record.chunk_times_capped,
        "timestamps": record.timestamps.value,
        "shared_read_token_events": record.shared_read_token_events,
        "first_token_shared_read": record.first_token_shared_read,
        "client_lag_max_ms": max(record.client_lags_s) * 1000.0 if record.client_lags_s else None,
    }


class JsonlWriter:
    """Appends records to a file; buffered, flushed when the test stops."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[bytes] | None = open(path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, record: RequestRecord, metrics: _metrics.RecordMetrics | None = None) -> None:
        if self._file is not None:
            self._file.write(orjson.dumps(record_to_dict(record, metrics)) + b"\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
