"""What an HTTP response that is not the answer asked for becomes: a failure with the server's words.

Error bodies are read only as far as what is kept of them (``Limits.max_error_body_bytes``), decoded
when the server compressed them anyway, and parsed by the dialect; nothing here can raise for a body a
server made up, however nested or large.
"""

from __future__ import annotations

import time

from ._limits import Deadlines, Limits
from ._records import FailureKind, RequestRecord
from ._retry import retry_after_s_of
from ._transport import Response, decoded, read_body
from .dialects.base import ChatDialect, status_failure_kind

__all__ = ["header_text", "http_failed", "is_json", "json_instead_of_stream"]

perf_counter = time.perf_counter


def header_text(value: object) -> str | None:
    """A header's value; a header sent twice comes back as a list, and its first value is kept."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def is_json(response: Response) -> bool:
    content_type = header_text(response.get("content-type")) or ""
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _error_body(response: Response, deadlines: Deadlines, limits: Limits) -> bytes:
    limit = limits.max_error_body_bytes
    body, _ = read_body(response, deadlines, limit)
    return decoded(body, header_text(response.get("content-encoding")), limit)


def _error_message(body: bytes, dialect: ChatDialect) -> str:
    try:
        return dialect.parse_error_message(body)
    except (RecursionError, ValueError):  # nested too deep for the parser: still the server's error
        return "(an error body that cannot be parsed)"


def http_failed(
    record: RequestRecord, response: Response, deadlines: Deadlines, dialect: ChatDialect, limits: Limits
) -> bool:
    """True (and the record failed, with the server's message) when the status is not 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return False
    message = f"HTTP {status}: {_error_message(_error_body(response, deadlines, limits), dialect)}"
    record.end_s = perf_counter()
    own_kind = status_failure_kind(dialect, status)  # Anthropic: 529 is overloaded
    if own_kind is not None:
        record.fail(own_kind, message)
    elif status == 429:
        record.retry_after_s = retry_after_s_of(  # Azure's retry-after-ms is finer than Retry-After
            header_text(response.get("retry-after-ms")), header_text(response.get("retry-after")), time.time()
        )
        record.fail(FailureKind.RATE_LIMITED, message)
    elif 400 <= status < 500:
        record.fail(FailureKind.CLIENT_ERROR, message)
    elif status >= 500:
        record.fail(FailureKind.SERVER_ERROR, message)
    else:
        record.fail(FailureKind.PROTOCOL_ERROR, f"unexpected HTTP status {status}")
    return True


def json_instead_of_stream(
    record: RequestRecord, response: Response, deadlines: Deadlines, dialect: ChatDialect, limits: Limits
) -> None:
    """A streamed request answered with JSON: the server's error (``stream_error``) when it is one,
    else a ``protocol_error`` that still quotes the body."""
    body = _error_body(response, deadlines, limits)
    record.end_s = perf_counter()
    message = dialect.parse_body_error(body)
    if message is not None:
        record.fail(FailureKind.STREAM_ERROR, f"error instead of a stream: {message}")
    else:
        record.fail(
            FailureKind.PROTOCOL_ERROR,
            f"HTTP {response.status_code} application/json, not a stream: {_error_message(body, dialect)}",
        )
