"""OpenAI-style error responses, raised from anywhere in a handler before the response starts."""

from __future__ import annotations

import math

import orjson

from ._http import Headers

SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
OVERLOADED_MESSAGE = "Overloaded"


class ApiError(Exception):
    """Answer the request with `status` and an OpenAI error body, then carry on with the connection."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        outcome: str = "client_error",
        headers: Headers | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param
        self.outcome = outcome  # the /mock/stats bucket this answer counts in
        self.headers: Headers = headers or []

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}
        return orjson.dumps({"error": error})


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value" if param else None)


def rate_limited(message: str, retry_after_s: float) -> ApiError:
    headers = [
        ("retry-after", str(math.ceil(retry_after_s))),
        ("retry-after-ms", str(round(retry_after_s * 1000))),
    ]
    return ApiError(
        429,
        message,
        error_type="requests",
        code="rate_limit_exceeded",
        outcome="rate_limited",
        headers=headers,
    )


def server_error() -> ApiError:
    return ApiError(500, SERVER_ERROR_MESSAGE, error_type="server_error", outcome="server_error")


def overloaded() -> ApiError:
    """Anthropic's HTTP 529: the service sheds load (counted with the server errors in /mock/stats)."""
    return ApiError(529, OVERLOADED_MESSAGE, error_type="overloaded_error", outcome="server_error")


def parse_json_object(body: bytes) -> dict[str, object]:
    """The request body as a JSON object, or a 400 like OpenAI's."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object.")
    return payload


def optional_positive_int(payload: dict[str, object], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(f"Invalid '{name}': expected an integer >= 1, got {value!r}.", param=name)
    return value
