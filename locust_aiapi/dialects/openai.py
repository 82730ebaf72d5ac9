"""The OpenAI Chat Completions dialect: path, auth, request bodies, answers and error messages.

The stream parser is :mod:`.openai_stream`, the embeddings format :mod:`.openai_embeddings`.
Chat Completions is also what Azure OpenAI, vLLM, SGLang, llama.cpp, Ollama, DeepSeek and
OpenRouter speak; :class:`OpenAIChatDialect`'s fields adapt it to their differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._errors import ProtocolError
from ._json import (
    encode_json,
    error_message_of,
    error_message_of_body,
    error_object_message,
    excerpt,
    load_json_object,
    short_text,
    usage_of,
)
from ._tool_calls import message_tool_calls
from .base import ChatCompletion, EmbeddingsDialect
from .openai_embeddings import OPENAI_EMBEDDINGS
from .openai_stream import MAX_TOOL_CALLS, OpenAIChatStream, choice_zero

__all__ = ["OPENAI", "OpenAIChatDialect"]

_EXCERPT_CHARS: Final = 200
_MESSAGE_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class OpenAIChatDialect:
    """OpenAI Chat Completions (a ``ChatDialect``); its fields adapt it to compatible servers.

    ``max_tokens_field="max_completion_tokens"`` suits OpenAI's reasoning models;
    ``include_usage=False`` omits ``stream_options`` for servers that reject it;
    ``auth_header="api-key", auth_scheme=""`` sends the key as Azure OpenAI expects.
    """

    name: str = "openai"
    chat_path: str = "/v1/chat/completions"
    include_usage: bool = True
    max_tokens_field: str = "max_tokens"
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    """Put before the key with one space; empty: the header is the key alone."""
    embeddings: EmbeddingsDialect | None = OPENAI_EMBEDDINGS

    def auth_headers(self, api_key: str) -> Mapping[str, str]:
        if not api_key:
            return {}
        return {self.auth_header: f"{self.auth_scheme} {api_key}" if self.auth_scheme else api_key}

    def build_chat_request(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int | None,
        temperature: float | None,
        stream: bool,
        extra_body: Mapping[str, Any],
    ) -> bytes:
        field, value = self._input(messages)
        body: dict[str, Any] = {"model": model, field: value, "stream": stream}
        if max_tokens is not None:
            body[self.max_tokens_field] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if stream and self.include_usage:
            body["stream_options"] = {"include_usage": True}
        body.update(extra_body)
        return encode_json(body)

    def _input(self, messages: list[dict[str, Any]]) -> tuple[str, Any]:
        """The body field that carries the conversation (legacy Completions: ``prompt``)."""
        return "messages", messages

    def stream_parser(self) -> OpenAIChatStream:
        return OpenAIChatStream()

    def parse_chat_response(self, body: bytes) -> ChatCompletion:
        completion = load_json_object(body, "chat completion")
        choices = completion.get("choices")
        if not choices or not isinstance(choices, list):
            if completion.get("error") is not None:
                message = excerpt(error_message_of(completion) or "(no message)", _MESSAGE_CHARS)
                raise ProtocolError(f"error instead of a chat completion: {message}")
            raise ProtocolError("chat completion has no choices")
        try:
            choice = choice_zero(choices)
            if choice is None or not isinstance(choice.get("message"), dict):
                raise ProtocolError("chat completion has no message in choice 0")
            return _completion_of(choice, completion)
        except (AttributeError, TypeError, LookupError):  # a value of an unexpected JSON type
            raise ProtocolError("chat completion has an unexpected structure") from None

    def parse_error_message(self, body: bytes) -> str:
        return error_message_of_body(body, _MESSAGE_CHARS, _EXCERPT_CHARS)

    def parse_body_error(self, body: bytes) -> str | None:
        return error_object_message(body, ("object", "error"), _MESSAGE_CHARS, _EXCERPT_CHARS)


OPENAI: Final = OpenAIChatDialect()


def _completion_of(choice: dict[str, Any], completion: dict[str, Any]) -> ChatCompletion:
    message = choice["message"]
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    finish_reason = choice.get("finish_reason")
    if finish_reason is not None and short_text(finish_reason) is None:
        raise ProtocolError("finish_reason is not a string")
    return ChatCompletion(
        text=_message_text(message),
        reasoning=reasoning if isinstance(reasoning, str) else "",
        usage=usage_of(completion.get("usage")),
        finish_reason=short_text(finish_reason),
        model=short_text(completion.get("model")),
        tool_calls=message_tool_calls(message, MAX_TOOL_CALLS),
    )


def _message_text(message: dict[str, Any]) -> str:
    """The message content; else its refusal; else its tool calls' arguments, one per line."""
    for key in ("content", "refusal"):
        value = message.get(key)
        if value and isinstance(value, str):
            return value
    calls = message.get("tool_calls") or []
    functions = [call.get("function") for call in calls[:MAX_TOOL_CALLS] if isinstance(call, dict)]
    functions.append(message.get("function_call"))
    arguments = [function.get("arguments") for function in functions if isinstance(function, dict)]
    return "\n".join(argument for argument in arguments if isinstance(argument, str))
