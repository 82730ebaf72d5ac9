"""One exception tree for the whole package.

::

    AIAPIError
    ├── ConfigurationError      the user's configuration is wrong: one clear line, non-zero exit
    └── ResponseError           the server misbehaved: becomes a failure sample, never a crash
        ├── ProtocolError       bytes we cannot parse (invalid JSON, not an SSE stream, ...)
        └── InvalidResponseError  parseable but wrong (vector count, dimensions, ...)

:class:`AIRequestFailure` is what Locust sees as the ``exception`` of a failed request event.
Its text is stable per kind and status so Locust's failure table groups it sensibly.
"""

from __future__ import annotations

from ._records import FailureKind


class AIAPIError(Exception):
    """Base class of every exception raised by locust_aiapi."""


class ConfigurationError(AIAPIError):
    """The user's configuration is wrong (bad option value, missing host, unreadable file)."""


class ResponseError(AIAPIError):
    """The server's response cannot be accepted."""

    kind: FailureKind = FailureKind.PROTOCOL_ERROR


class ProtocolError(ResponseError):
    """The response is not what the wire format allows."""

    kind = FailureKind.PROTOCOL_ERROR


class InvalidResponseError(ResponseError):
    """The response parses but its content is inconsistent with the request."""

    kind = FailureKind.INVALID_RESPONSE


class AIRequestFailure(AIAPIError):
    """A failed AI request, as reported to Locust's ``request`` event."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.message = message

    def __repr__(self) -> str:
        # Locust lists failures by repr(); the kind and the server's message are what people read
        return str(self)
