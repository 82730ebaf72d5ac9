"""`POST /v1/completions`: the legacy Completions API, on chat's timing model, faults and queue.

Only the wire differs from chat: a ``prompt`` (a string or a list of strings) instead of messages,
``text_completion`` chunks whose choice carries ``text``, and no role chunk (headers go out alone,
at once). Usage, ``[DONE]`` and the error event are as in chat.
"""

from __future__ import annotations

import orjson

from ._chat import serve_chat_with
from ._chat_wire import DEFAULT_MODEL, ChatEncoder, ChatRequest, usage
from ._errors import bad_request, optional_positive_int, parse_json_object
from ._exchange import Exchange, ServerState
from ._tokens import estimate_tokens


def parse_completions_request(body: bytes) -> ChatRequest:
    payload = parse_json_object(body)
    prompt = payload.get("prompt")
    if isinstance(prompt, list) and all(isinstance(piece, str) for piece in prompt) and prompt:
        length = sum(map(len, prompt))
    elif isinstance(prompt, str):
        length = len(prompt)
    else:
        raise bad_request("'prompt' is a required property: a string or a list of strings.", "prompt")
    model = payload.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        raise bad_request("'model' must be a string.", "model")
    stream_options = payload.get("stream_options")
    return ChatRequest(
        model=model,
        stream=payload.get("stream") is True,
        include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
        max_tokens=optional_positive_int(payload, "max_tokens") or 16,  # the API's default
        prompt_tokens=estimate_tokens(length),
    )


class CompletionsEncoder(ChatEncoder):
    """``text_completion`` objects instead of ``chat.completion(.chunk)``."""

    ID_PREFIX = "cmpl-"

    def role_event(self) -> bytes:
        return b""  # the legacy API has no role chunk

    def content_event(self, text: str) -> bytes:
        return self._choice(text, None)

    def finish_event(self, finish_reason: str) -> bytes:
        return self._choice("", finish_reason)

    def usage_event(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        chunk = self._head("text_completion")
        chunk["choices"] = []
        chunk["usage"] = usage(prompt_tokens, completion_tokens)
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def completion(self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> bytes:
        body = self._head("text_completion")
        body["choices"] = [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]
        body["usage"] = usage(prompt_tokens, completion_tokens)
        return orjson.dumps(body)

    def _choice(self, text: str, finish_reason: str | None) -> bytes:
        chunk = self._head("text_completion")
        chunk["choices"] = [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]
        if self._include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def serve_completions(state: ServerState, exchange: Exchange) -> None:
    serve_chat_with(state, exchange, parse_completions_request(exchange.request.body), CompletionsEncoder)
