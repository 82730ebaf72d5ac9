"""The OpenAI Responses dialect: ``POST /v1/responses`` with ``input`` and ``max_output_tokens``.

The stream parser is :mod:`.responses_stream`; embeddings keep OpenAI's format. Messages are sent
as ``input`` items as they are (``system`` / ``developer`` roles included, which the API accepts),
except a conversation's tool calls and results (kept in Chat Completions' format): an assistant's
``tool_calls`` go as ``function_call`` items, each ``tool`` message as a ``function_call_output``; its
``reasoning_content`` (``keep_reasoning``, for DeepSeek) is left out, a field the API does not take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._errors import ProtocolError
from .._records import ToolCall
from ._json import (
    encode_json,
    error_message_of,
    error_message_of_body,
    error_object_message,
    excerpt,
    load_json_object,
    short_text,
)
from ._tool_calls import (
    check_room_for_call,
    function_call_of,
    needs_translation,
    without_chat_fields,
)
from .base import ChatCompletion, EmbeddingsDialect
from .openai_embeddings import OPENAI_EMBEDDINGS
from .responses_stream import ResponsesStream, responses_usage

__all__ = ["OPENAI_RESPONSES", "OpenAIResponsesDialect"]

_MAX_ITEMS: Final = 1024  # output items (and parts of each) read from a non-streamed answer
_EXCERPT_CHARS: Final = 200
_MESSAGE_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class OpenAIResponsesDialect:
    """OpenAI Responses (a ``ChatDialect``). Reasoning summaries are asked for through
    ``extra_body``: ``{"reasoning": {"effort": "low", "summary": "auto"}}``."""

    name: str = "openai-responses"
    chat_path: str = "/v1/responses"
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
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
        body: dict[str, Any] = {"model": model, "input": _input_items(messages), "stream": stream}
        if max_tokens is not None:
            body["max_output_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        body.update(extra_body)
        return encode_json(body)

    def stream_parser(self) -> ResponsesStream:
        return ResponsesStream()

    def parse_chat_response(self, body: bytes) -> ChatCompletion:
        response = load_json_object(body, "response")
        if response.get("error") is not None or response.get("status") == "failed":
            message = excerpt(error_message_of(response) or "(no message)", _MESSAGE_CHARS)
            raise ProtocolError(f"error instead of a response: {message}")
        output = response.get("output")
        if not isinstance(output, list):
            raise ProtocolError("response has no output list")
        try:
            return _completion_of(response, output)
        except (AttributeError, TypeError, LookupError):
            raise ProtocolError("response has an unexpected structure") from None

    def parse_error_message(self, body: bytes) -> str:
        return error_message_of_body(body, _MESSAGE_CHARS, _EXCERPT_CHARS)

    def parse_body_error(self, body: bytes) -> str | None:
        return error_object_message(body, None, _MESSAGE_CHARS, _EXCERPT_CHARS)


OPENAI_RESPONSES: Final = OpenAIResponsesDialect()


def _completion_of(response: dict[str, Any], output: list[Any]) -> ChatCompletion:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for item in output[:_MAX_ITEMS]:
        kind = item.get("type")
        if kind == "message":
            texts += _texts(item.get("content"), ("output_text", "refusal"))
        elif kind == "reasoning":
            reasoning += _texts(item.get("summary"), ("summary_text",))
        elif kind == "function_call":
            check_room_for_call(len(calls))
            calls.append(function_call_of(item, len(calls)))
    details = response.get("incomplete_details") or {}
    status = short_text(response.get("status"))
    finish_reason = short_text(details.get("reason")) if status == "incomplete" else status
    return ChatCompletion(
        text="".join(texts) or "\n".join(call.arguments for call in calls),
        reasoning="".join(reasoning),
        usage=responses_usage(response.get("usage")),
        finish_reason=finish_reason,
        model=short_text(response.get("model")),
        tool_calls=tuple(calls),
    )


def _input_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as ``input`` items: tool calls and their results as the API's own items."""
    if not needs_translation(messages):
        return messages  # the common case: sent as they are, not copied
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "tool":
            items.append(
                {"type": "function_call_output", "call_id": message.get("tool_call_id"),
                 "output": message.get("content")}
            )  # fmt: skip
            continue
        calls = message.get("tool_calls")
        kept = without_chat_fields(message)
        if not calls:
            items.append(kept)
            continue
        if message.get("content"):
            items.append(kept)
        for call in calls:
            function = call.get("function") or {}
            items.append(
                {"type": "function_call", "call_id": call.get("id"), "name": function.get("name"),
                 "arguments": function.get("arguments") or ""}
            )  # fmt: skip
    return items


def _texts(parts: object, kinds: tuple[str, ...]) -> list[str]:
    if not isinstance(parts, list):
        return []
    found = []
    for part in parts[:_MAX_ITEMS]:
        kind = part.get("type")
        key = "refusal" if kind == "refusal" else "text"
        if kind in kinds and isinstance(part.get(key), str):
            found.append(part[key])
    return found
