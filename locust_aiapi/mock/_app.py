"""Routing and the per-request bookkeeping (auth, errors, stats, ground-truth record)."""

from __future__ import annotations

import hmac
import sys
import time
from collections.abc import Callable

import orjson
from gevent import GreenletExit

from ._azure import (
    CHAT_ENDPOINT,
    EMBEDDINGS_ENDPOINT,
    azure_endpoint,
    serve_azure_chat,
    serve_azure_embeddings,
)
from ._chat import serve_chat
from ._completions import serve_completions
from ._config import PROG, MockConfig
from ._embeddings import serve_embeddings
from ._errors import ApiError, server_error
from ._exchange import Exchange, ServerState
from ._http import Request, ResponseWriter
from ._messages import serve_messages
from ._messages_wire import error_body as anthropic_error_body
from ._record import Recorder
from ._responses import serve_responses

Handler = Callable[[ServerState, Exchange], None]

_MODELS = (
    ("gpt-4.1", 1744316542),
    ("gpt-4o-mini", 1721172741),
    ("text-embedding-3-small", 1705948997),
    ("text-embedding-3-large", 1705953180),
)
MODELS_BODY = orjson.dumps(
    {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": created, "owned_by": "system"}
            for model, created in _MODELS
        ],
    }
)
# Control-plane endpoints: never authenticated, never recorded.
_CONTROL_PATHS = frozenset({"/health", "/mock/stats"})
# Outcome counters cover the inference endpoints only, so they add up to what a load test sent.
_INFERENCE_PATHS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/responses",
        CHAT_ENDPOINT,
        EMBEDDINGS_ENDPOINT,
    }
)
# Endpoints of other APIs answer errors in their own format, and take the key in their own header
# (Anthropic's SDK sends ``x-api-key`` in its 0.x versions, ``Authorization: Bearer`` since 2.x: both work).
_ERROR_BODIES: dict[str, Callable[[ApiError], bytes]] = {"/v1/messages": anthropic_error_body}
_KEY_HEADERS = {"/v1/messages": "x-api-key", CHAT_ENDPOINT: "api-key", EMBEDDINGS_ENDPOINT: "api-key"}


def _serve_models(state: ServerState, exchange: Exchange) -> None:
    exchange.send_json(200, MODELS_BODY)


def _serve_health(state: ServerState, exchange: Exchange) -> None:
    exchange.send_json(200, b'{"status":"ok"}')


def _serve_stats(state: ServerState, exchange: Exchange) -> None:
    exchange.send_json(200, orjson.dumps(state.stats.snapshot()))


ROUTES: dict[str, tuple[str, Handler]] = {
    "/v1/chat/completions": ("POST", serve_chat),
    "/v1/completions": ("POST", serve_completions),
    "/v1/embeddings": ("POST", serve_embeddings),
    "/v1/messages": ("POST", serve_messages),
    "/v1/responses": ("POST", serve_responses),
    CHAT_ENDPOINT: ("POST", serve_azure_chat),
    EMBEDDINGS_ENDPOINT: ("POST", serve_azure_embeddings),
    "/v1/models": ("GET", _serve_models),
    "/health": ("GET", _serve_health),
    "/mock/stats": ("GET", _serve_stats),
}


class App:
    """Serves one parsed request at a time on behalf of a connection."""

    def __init__(self, config: MockConfig, recorder: Recorder | None = None) -> None:
        self.state = ServerState(config, recorder=recorder)
        self._api_key = None if config.api_key is None else config.api_key.encode()

    def serve(self, writer: ResponseWriter, request: Request) -> None:
        path = request.path
        endpoint = path if path in ROUTES else azure_endpoint(path) or "unknown"
        exchange = Exchange(self.state, writer, request, endpoint)
        self.state.stats.begin(endpoint)
        try:
            self._dispatch(exchange, endpoint)
        except ApiError as error:
            if exchange.started:
                raise RuntimeError("an API error was raised after the response started") from error
            error_body = _ERROR_BODIES.get(endpoint)
            exchange.send_error(error, None if error_body is None else error_body(error))
        except (OSError, GreenletExit):  # the client went away, or the server is stopping
            exchange.record.outcome = "disconnected"
            raise
        except Exception as error:  # a bug of ours: a 500 the stats count, never a dropped connection
            exchange.record.outcome = "server_error"
            print(f"{PROG}: internal error answering {request.method} {path}: {error!r}", file=sys.stderr)
            if exchange.started:
                raise
            internal = server_error()
            error_body = _ERROR_BODIES.get(endpoint)
            exchange.send_error(internal, None if error_body is None else error_body(internal))
        finally:
            self._finish(exchange, endpoint)

    def _dispatch(self, exchange: Exchange, endpoint: str) -> None:
        request = exchange.request
        if request.path.startswith(("/v1/", "/openai/")):
            self._authenticate(request, endpoint)
        route = ROUTES.get(endpoint)
        if route is None:
            raise ApiError(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")
        method, handler = route
        if request.method != method:
            raise ApiError(
                405, f"Method {request.method} not allowed on {request.path}", code="method_not_allowed"
            )
        handler(self.state, exchange)

    def _authenticate(self, request: Request, endpoint: str) -> None:
        if self._api_key is None:
            return
        given = request.headers.get("authorization", "").encode()
        expected = b"Bearer " + self._api_key
        key_header = _KEY_HEADERS.get(endpoint)
        if key_header is not None and key_header in request.headers:
            given = request.headers[key_header].encode()
            expected = self._api_key
        if not hmac.compare_digest(given, expected):
            message = "Incorrect API key provided." if given else "You didn't provide an API key."
            raise ApiError(401, message, code="invalid_api_key")

    def _finish(self, exchange: Exchange, endpoint: str) -> None:
        record = exchange.record
        record.end_s = time.perf_counter()
        self.state.stats.end(record.outcome if endpoint in _INFERENCE_PATHS else None)
        if self.state.recorder is not None and endpoint not in _CONTROL_PATHS:
            self.state.recorder.write(record)
