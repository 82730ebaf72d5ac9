"""A conversation's history, kept in OpenAI's Chat Completions format, as the Messages API takes it.

A :class:`~locust_aiapi._conversation.Conversation` keeps OpenAI's format: an assistant answer with
``tool_calls`` and a ``tool`` message for each result. Anthropic takes the calls as ``tool_use`` blocks
of the assistant's content (``input``: the arguments, parsed) and the results as ``tool_result`` blocks
of the next user message (consecutive results in one message). The signed thinking blocks a
conversation keeps with an answer's calls (``thinking_blocks``) go back as they came, in their places
(those before any call open the content): with thinking on, the API refuses results whose calls come
back without them. ``reasoning_content`` (a conversation's ``keep_reasoning``, for DeepSeek) is left
out: the API refuses fields it does not know, and takes thinking back only as signed blocks. Every
other message is sent as it is.
Arguments that are not a JSON object are sent as received: the API then refuses the request with a 400
that says why, rather than us sending something the model did not write.
"""

from __future__ import annotations

from typing import Any

import orjson

from ._tool_calls import needs_translation, without_chat_fields

__all__ = ["anthropic_messages"]


def anthropic_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` (no system message) for Anthropic: tool calls and results in its blocks."""
    if not needs_translation(messages):
        return messages  # the common case: nothing to translate, nothing copied
    translated: list[dict[str, Any]] = []
    results: list[dict[str, Any]] | None = None  # the blocks of the user message of results being built
    for message in messages:
        if message.get("role") == "tool":
            if results is None:
                results = []
                translated.append({"role": "user", "content": results})
            results.append(_tool_result(message))
            continue
        results = None
        translated.append(
            _with_tool_use(message) if message.get("tool_calls") else without_chat_fields(message)
        )
    return translated


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": message.get("tool_call_id"),
        "content": message.get("content"),
    }


def _with_tool_use(message: dict[str, Any]) -> dict[str, Any]:
    """The assistant's content: its thinking before any call first, its text, then each call followed
    by the thinking that came after it (interleaved thinking, in its place)."""
    content = message.get("content")
    thinking = _thinking_by_place(message.get("thinking_blocks"))
    blocks: list[Any] = thinking.get(0, [])
    if isinstance(content, list):
        blocks += content
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    for number, call in enumerate(message["tool_calls"], 1):
        function = call.get("function") or {}
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
             "input": _input_of(function.get("arguments"))}
        )  # fmt: skip
        blocks += thinking.get(number, [])
    return {**without_chat_fields(message), "content": blocks}


def _thinking_by_place(kept: object) -> dict[int, list[Any]]:
    """The kept thinking blocks by the number of calls before them (a conversation's ``thinking_blocks``)."""
    places: dict[int, list[Any]] = {}
    for entry in kept if isinstance(kept, list) else ():
        if isinstance(entry, dict) and "block" in entry:
            places.setdefault(entry.get("after_calls", 0), []).append(entry["block"])
    return places


def _input_of(arguments: object) -> object:
    """The call's input: its arguments parsed when they are a JSON object (none: ``{}``), else as received."""
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, (str, bytes)):
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return arguments
        return parsed if isinstance(parsed, dict) else arguments
    return arguments
