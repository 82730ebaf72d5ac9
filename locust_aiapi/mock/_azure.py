"""Azure OpenAI's deployment URLs: chat completions and embeddings under ``/openai/deployments/{name}``.

The wire format is OpenAI's plus Azure's content filtering: the stream opens with a chunk whose
``choices`` is empty and which carries ``prompt_filter_results``, and every content chunk carries
``content_filter_results``. The deployment name stands in for the model when the body names none;
``api-version`` is required, as on Azure (a request without it is a 404).
"""

from __future__ import annotations

from typing import Final

import orjson

from ._chat import serve_chat_with
from ._chat_wire import ChatEncoder, parse_chat_request
from ._embeddings import serve_embeddings
from ._errors import ApiError
from ._exchange import Exchange, ServerState

PREFIX: Final = "/openai/deployments/"
CHAT_ENDPOINT: Final = "/openai/deployments/{deployment}/chat/completions"
EMBEDDINGS_ENDPOINT: Final = "/openai/deployments/{deployment}/embeddings"
_SAFE: Final = {"filtered": False, "severity": "safe"}
_FILTERS: Final = {name: _SAFE for name in ("hate", "self_harm", "sexual", "violence")}


def azure_endpoint(path: str) -> str | None:
    """The endpoint a deployment path names (``.../{deployment}/chat/completions``), or None."""
    if not path.startswith(PREFIX):
        return None
    deployment, _, operation = path[len(PREFIX) :].partition("/")
    if not deployment:
        return None
    return {"chat/completions": CHAT_ENDPOINT, "embeddings": EMBEDDINGS_ENDPOINT}.get(operation)


class AzureChatEncoder(ChatEncoder):
    """OpenAI's chunks with Azure's content-filter results."""

    def role_event(self) -> bytes:
        prompt_filter = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _FILTERS}],
        }
        return b"data: " + orjson.dumps(prompt_filter) + b"\n\n" + super().role_event()

    def content_event(self, text: str) -> bytes:
        chunk = self._head("chat.completion.chunk")
        choice = {"content_filter_results": _FILTERS, "delta": {"content": text}, "finish_reason": None}
        chunk["choices"] = [{**choice, "index": 0, "logprobs": None}]
        if self._include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def serve_azure_chat(state: ServerState, exchange: Exchange) -> None:
    chat = parse_chat_request(exchange.request.body, default_model=_deployment(exchange))
    serve_chat_with(state, exchange, chat, AzureChatEncoder)


def serve_azure_embeddings(state: ServerState, exchange: Exchange) -> None:
    _deployment(exchange)
    serve_embeddings(state, exchange)


def _deployment(exchange: Exchange) -> str:
    request = exchange.request
    if "api-version=" not in request.target.partition("?")[2]:
        raise ApiError(404, "Resource not found", error_type="invalid_request_error", code="404")
    return request.path[len(PREFIX) :].partition("/")[0]
