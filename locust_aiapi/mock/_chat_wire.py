"""The chat completions wire format: parse a request, encode stream events and complete answers.

Key order and fields follow real OpenAI responses, so clients see the same structure byte for byte.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import orjson

from ._errors import SERVER_ERROR_MESSAGE, bad_request, optional_positive_int, parse_json_object
from ._tokens import estimate_tokens
from ._tools import ToolCall, ToolMenu, tool_menu, tools_length

DEFAULT_MODEL = "gpt-4.1"
SYSTEM_FINGERPRINT = "fp_mock"
DONE_EVENT = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class ChatRequest:
    model: str
    stream: bool
    include_usage: bool
    max_tokens: int | None  # max_completion_tokens, or the older max_tokens
    prompt_tokens: int
    tools: ToolMenu | None = None  # what the answer may call (None: it answers in text)


def parse_chat_request(body: bytes, default_model: str = DEFAULT_MODEL) -> ChatRequest:
    payload = parse_json_object(body)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' is a required property and must be a non-empty array.", "messages")
    model = payload.get("model", default_model)
    if not isinstance(model, str):
        raise bad_request("'model' must be a string.", "model")
    max_tokens = optional_positive_int(payload, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = optional_positive_int(payload, "max_tokens")
    stream_options = payload.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return ChatRequest(
        model=model,
        stream=payload.get("stream") is True,
        include_usage=include_usage,
        max_tokens=max_tokens,
        prompt_tokens=estimate_tokens(
            sum(_content_length(message) for message in messages) + tools_length(payload.get("tools"))
        ),
        tools=tool_menu(payload, "chat"),
    )


def _content_length(message: object) -> int:
    if not isinstance(message, dict):
        raise bad_request("Each message must be an object.", "messages")
    content = message.get("content")
    length = _calls_length(message.get("tool_calls"))  # an assistant's calls: their names and arguments
    if isinstance(content, str):
        return length + len(content)
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}, ...]
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return length + sum(len(text) for text in texts if isinstance(text, str))
    return length


def _calls_length(calls: object) -> int:
    """The characters of an assistant's calls: their names and arguments (strings, as the API takes them)."""
    if not isinstance(calls, list):
        return 0
    functions = [call.get("function") for call in calls if isinstance(call, dict)]
    pieces = [f.get(key) for f in functions if isinstance(f, dict) for key in ("name", "arguments")]
    return sum(len(piece) for piece in pieces if isinstance(piece, str))


class ChatEncoder:
    """Encodes the events of one completion; every event shares id, created and model."""

    ID_PREFIX = "chatcmpl-"

    def __init__(self, model: str, include_usage: bool) -> None:
        self.completion_id = f"{self.ID_PREFIX}{os.urandom(15).hex()}"
        self.created = int(time.time())
        self.model = model
        self._include_usage = include_usage
        self.cached_tokens = 0  # of the prompt, held by the prefix cache (prompt_tokens_details)
        self.tool_call: ToolCall | None = None  # the answer is this call (see _tools), not text
        self._content_frame: tuple[bytes, bytes] | None = None

    def role_event(self) -> bytes:
        content = "" if self.tool_call is None else None  # as OpenAI's role chunk before a call
        return self._chunk({"role": "assistant", "content": content, "refusal": None}, None)

    def content_event(self, text: str) -> bytes:
        # The hot path (20k chunks/s): only the text changes between chunks, so the bytes around it
        # are encoded once per answer; the result is byte for byte what `_chunk` would give.
        if self._content_frame is None:
            marker = "\x00"
            # the text is the last string in the chunk, so a model name cannot be mistaken for it
            prefix, _, suffix = self._chunk({"content": marker}, None).rpartition(orjson.dumps(marker))
            self._content_frame = (prefix, suffix)
        prefix, suffix = self._content_frame
        return prefix + orjson.dumps(text) + suffix

    def tool_call_event(self, arguments: str, first: bool) -> bytes:
        """A piece of :attr:`tool_call`'s arguments; the first piece comes with its id, type and name."""
        call = self.tool_call
        assert call is not None
        if first:
            function = {"name": call.name, "arguments": arguments}
            part: dict[str, object] = {"index": 0, "id": call.call_id, "type": "function"}
            part["function"] = function
        else:
            part = {"index": 0, "function": {"arguments": arguments}}
        return self._chunk({"tool_calls": [part]}, None)

    def finish_event(self, finish_reason: str) -> bytes:
        return self._chunk({}, finish_reason)

    def usage_event(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        chunk = self._head("chat.completion.chunk")
        chunk["choices"] = []
        chunk["usage"] = usage(prompt_tokens, completion_tokens, self.cached_tokens)
        return _event(chunk)

    @staticmethod
    def error_event() -> bytes:
        return _event({"error": {"message": SERVER_ERROR_MESSAGE, "type": "server_error", "code": None}})

    def completion(self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The whole answer; with :attr:`tool_call`, ``text`` is the call's arguments."""
        tool_call = self.tool_call
        message: dict[str, object] = {
            "role": "assistant",
            "content": text if tool_call is None else None,
            "refusal": None,
            "annotations": [],
        }
        if tool_call is not None:
            function = {"name": tool_call.name, "arguments": text}
            message["tool_calls"] = [{"id": tool_call.call_id, "type": "function", "function": function}]
        body = self._head("chat.completion")
        body["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}]
        body["usage"] = usage(prompt_tokens, completion_tokens, self.cached_tokens)
        body["service_tier"] = "default"
        return orjson.dumps(body)

    def _chunk(self, delta: dict[str, object], finish_reason: str | None) -> bytes:
        chunk = self._head("chat.completion.chunk")
        chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if self._include_usage:
            chunk["usage"] = None
        return _event(chunk)

    def _head(self, object_type: str) -> dict[str, object]:
        return {
            "id": self.completion_id,
            "object": object_type,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int | None = None) -> dict[str, object]:
    """OpenAI's usage object; with ``cached_tokens``, its ``prompt_tokens_details`` as Chat Completions
    sends it (the legacy Completions API has none)."""
    counts: dict[str, object] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        counts["prompt_tokens_details"] = {"cached_tokens": cached_tokens, "audio_tokens": 0}
    return counts


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
