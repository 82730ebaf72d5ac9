"""The OpenAI Responses wire format: parse a request, encode stream events and complete responses.

Event order and fields follow what the Responses API sends and the official SDK checks: every
event has its ``event:`` line, the same ``type`` in its data and a ``sequence_number`` counting
from 0; ``response.created`` and ``response.in_progress`` carry the response so far (no output, no
usage); each output item is announced (``output_item.added``, ``*_part.added``), streamed and
closed (``*.done``); the terminal event carries the whole response with its usage.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from ._errors import SERVER_ERROR_MESSAGE, bad_request, optional_positive_int, parse_json_object
from ._tokens import estimate_tokens
from ._tools import ToolCall, ToolMenu, tool_menu, tools_length

DEFAULT_MODEL = "gpt-4.1"
Payload = dict[str, object]


@dataclass(frozen=True)
class ResponsesRequest:
    model: str
    stream: bool
    max_output_tokens: int | None
    reasoning_summary: bool  # "reasoning": {"summary": "auto" | "concise" | "detailed"}
    prompt_tokens: int
    tools: ToolMenu | None = None  # what the answer may call (None: it answers in text)


def parse_responses_request(body: bytes) -> ResponsesRequest:
    payload = parse_json_object(body)
    given = payload.get("input")
    if not (isinstance(given, str) and given) and not (isinstance(given, list) and given):
        raise bad_request("Missing required parameter: 'input'.", "input")
    model = payload.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        raise bad_request("Invalid type for 'model': expected a string.", "model")
    reasoning = payload.get("reasoning")
    length = (
        _text_length(given) + _text_length(payload.get("instructions")) + tools_length(payload.get("tools"))
    )
    return ResponsesRequest(
        model=model,
        stream=payload.get("stream") is True,
        max_output_tokens=optional_positive_int(payload, "max_output_tokens"),
        reasoning_summary=isinstance(reasoning, dict) and reasoning.get("summary") is not None,
        prompt_tokens=estimate_tokens(length),
        tools=tool_menu(payload, "responses"),
    )


def _text_length(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):  # input items, or content parts: {"type": "input_text", "text": ...}
        return sum(_item_length(item) for item in value)
    return 0


def _item_length(item: object) -> int:
    if not isinstance(item, dict):
        raise bad_request("Invalid 'input': each item must be an object.", "input")
    # a message's content, a part's text, a function call's name and arguments, a call's output
    pieces = (item.get("text"), item.get("name"), item.get("arguments"), item.get("output"))
    return _text_length(item.get("content")) + sum(len(piece) for piece in pieces if isinstance(piece, str))


class ResponsesEncoder:
    """Encodes the events of one response: ids, sequence numbers and the items produced so far."""

    def __init__(self, model: str, prompt_tokens: int) -> None:
        self.response_id = f"resp_{os.urandom(24).hex()}"
        self.created_at = int(time.time())
        self.model = model
        self.prompt_tokens = prompt_tokens
        self._sequence = 0
        self._items: list[Payload] = []  # finished output items
        self._item: Payload | None = None  # the open item
        self._texts: list[str] = []  # text of the open item

    def start_events(self) -> bytes:
        snapshot = {"response": self._response("in_progress", None, output=False)}
        return self._event("response.created", snapshot) + self._event("response.in_progress", snapshot)

    def open_item(self, kind: str, call: ToolCall | None = None) -> bytes:
        """Closes the open item (if any) and opens the next: ``message``, ``reasoning``, or
        ``function_call`` for ``call`` (its arguments stream as JSON text)."""
        head = self.close_item()
        prefix = {"message": "msg", "function_call": "fc"}.get(kind, "rs")
        item_id = f"{prefix}_{os.urandom(24).hex()}"
        if kind == "function_call" and call is not None:
            self._item, self._texts = _function_call(item_id, call), []
            added = {"output_index": len(self._items), "item": self._item}
            return head + self._event("response.output_item.added", added)
        if kind == "message":
            item: Payload = {
                "id": item_id,
                "type": "message",
                "status": "in_progress",
                "content": [],
                "role": "assistant",
            }
        else:
            item = {"id": item_id, "type": "reasoning", "summary": []}
        self._item, self._texts = item, []
        head += self._event("response.output_item.added", {"output_index": len(self._items), "item": item})
        if kind == "message":
            return head + self._event(
                "response.content_part.added", {**self._where(), "part": _text_part("")}
            )
        part = {"type": "summary_text", "text": ""}
        return head + self._event("response.reasoning_summary_part.added", {**self._where(), "part": part})

    def delta_event(self, text: str) -> bytes:
        self._texts.append(text)
        if self._is_call():
            return self._event("response.function_call_arguments.delta", {**self._where(), "delta": text})
        kind = "response.output_text.delta" if self._is_message() else "response.reasoning_summary_text.delta"
        extra: Payload = {"logprobs": []} if self._is_message() else {}
        return self._event(kind, {**self._where(), "delta": text, **extra})

    def close_item(self, status: str = "completed") -> bytes:
        """Ends the open item; ``status`` ``incomplete`` for one cut at ``max_output_tokens``."""
        item = self._item
        if item is None:
            return b""
        text, where = "".join(self._texts), self._where()
        if self._is_call():
            done = self._event("response.function_call_arguments.done", {**where, "arguments": text})
            finished: Payload = {**item, "status": status, "arguments": text}
        elif self._is_message():
            part = _text_part(text)
            done = self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
            done += self._event("response.content_part.done", {**where, "part": part})
            finished = {**item, "status": status, "content": [part]}
        else:
            part = {"type": "summary_text", "text": text}
            done = self._event("response.reasoning_summary_text.done", {**where, "text": text})
            done += self._event("response.reasoning_summary_part.done", {**where, "part": part})
            finished = {**item, "summary": [part]}
        done += self._event("response.output_item.done", {"output_index": len(self._items), "item": finished})
        self._items.append(finished)
        self._item = None
        return done

    def final_events(self, finish_reason: str, output_tokens: int) -> list[bytes]:
        closing = self.close_item("incomplete" if finish_reason == "length" else "completed")
        if finish_reason == "length":
            response = self._response("incomplete", output_tokens)
            response["incomplete_details"] = {"reason": "max_output_tokens"}
            return [closing, self._event("response.incomplete", {"response": response})]
        return [
            closing,
            self._event("response.completed", {"response": self._response("completed", output_tokens)}),
        ]

    def failed_event(self) -> bytes:
        response = self._response("failed", None)
        response["error"] = {"code": "server_error", "message": SERVER_ERROR_MESSAGE}
        return self._event("response.failed", {"response": response})

    def response(self, finish_reason: str, output_tokens: int) -> bytes:
        """The whole non-streamed response, after the items were produced with open/delta/close."""
        status = "incomplete" if finish_reason == "length" else "completed"
        self.close_item(status)
        body = self._response(status, output_tokens)
        if status == "incomplete":
            body["incomplete_details"] = {"reason": "max_output_tokens"}
        return orjson.dumps(body)

    def _is_message(self) -> bool:
        return self._item is not None and self._item["type"] == "message"

    def _is_call(self) -> bool:
        return self._item is not None and self._item["type"] == "function_call"

    def _where(self) -> Payload:
        assert self._item is not None
        if self._is_call():
            return {"item_id": self._item["id"], "output_index": len(self._items)}
        index_name = "content_index" if self._is_message() else "summary_index"
        return {"item_id": self._item["id"], "output_index": len(self._items), index_name: 0}

    def _response(self, status: str, output_tokens: int | None, output: bool = True) -> Payload:
        usage = None
        if output_tokens is not None:
            usage = {
                "input_tokens": self.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.prompt_tokens + output_tokens,
            }
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": self.model,
            "output": list(self._items) if output else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
        }

    def _event(self, kind: str, fields: Mapping[str, object]) -> bytes:
        payload = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _function_call(item_id: str, call: ToolCall) -> Payload:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": call.call_id,
        "name": call.name,
    }


def _text_part(text: str) -> Payload:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
