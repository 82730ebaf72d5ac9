"""Signed thinking, as the Messages API checks it when a conversation sends it back.

Thinking is on with ``{"type": "enabled", "budget_tokens": N}`` (N at least 1,024 and below
``max_tokens``, as the API requires) or ``{"type": "adaptive"}``; a ``tool_choice`` that forces a call,
a ``temperature`` other than 1 and a ``top_k`` are refused with it, as the API refuses them. Each
thinking block the mock sends is signed: an HMAC of its text under a key every mock process shares, so
a block changed in any way (its text, its signature) no longer verifies, wherever it was served. With
thinking on, the API takes tool results only when the assistant message that made the calls opens
with its thinking (``thinking`` or ``redacted_thinking``): a client that drops the blocks gets the 400
the real API sends, and so does one that sends a block changed or made up. The mock never sends
``redacted_thinking``: such a block is taken as it comes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Final

from ._errors import bad_request
from ._tools import holds_tool_results

__all__ = ["MIN_BUDGET_TOKENS", "check_thinking", "signature_of", "thinking_on"]

MIN_BUDGET_TOKENS: Final = 1024
_KEY: Final = b"locust-aiapi mock thinking"
_THINKING: Final = ("thinking", "redacted_thinking")


def signature_of(thinking: str) -> str:
    """The signature the mock gives a thinking block with this text."""
    digest = hmac.new(_KEY, thinking.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def thinking_on(payload: dict[str, Any], max_tokens: int) -> bool:
    """Whether the request thinks (``enabled``, with a budget of 1,024 tokens or more and below
    ``max_tokens``, or ``adaptive``); the API's 400 for a budget it refuses, or, with thinking, a forced
    tool choice, a temperature other than 1 or a ``top_k``."""
    thinking = payload.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")  # type: ignore[union-attr] # (a dict: it has a type)
        if type(budget) is not int:
            raise bad_request("thinking.enabled.budget_tokens: Field required (an integer)", "thinking")
        if budget < MIN_BUDGET_TOKENS:
            least = f"Input should be greater than or equal to {MIN_BUDGET_TOKENS}"
            raise bad_request(f"thinking.enabled.budget_tokens: {least}", "thinking")
        if budget >= max_tokens:
            raise bad_request("`max_tokens` must be greater than `thinking.budget_tokens`.", "max_tokens")
    if kind not in ("enabled", "adaptive"):
        return False
    choice = payload.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise bad_request("Thinking may not be enabled when `tool_choice` forces tool use.", "tool_choice")
    temperature = payload.get("temperature")
    if temperature is not None and temperature != 1:
        raise bad_request("`temperature` may only be set to 1 when thinking is enabled.", "temperature")
    if payload.get("top_k") is not None:
        raise bad_request("`top_k` must be unset when thinking is enabled.", "top_k")
    return True


def check_thinking(messages: list[Any], thinking_on: bool) -> None:
    """With thinking on, raise the API's 400 for a thinking block whose signature does not verify, and
    for tool results whose assistant message does not open with its thinking (with thinking off, the
    API strips earlier thinking unread)."""
    if not thinking_on:
        return
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or message.get("role") != "assistant":
            continue
        for place, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "thinking" and not _verifies(block):
                where = f"messages.{index}.content.{place}"
                raise bad_request(f"{where}: Invalid `signature` in `thinking` block")
    _check_calls_open_with_thinking(messages)


def _verifies(block: dict[str, Any]) -> bool:
    thinking, signature = block.get("thinking"), block.get("signature")
    if not isinstance(thinking, str) or not isinstance(signature, str):
        return False
    return hmac.compare_digest(signature.encode(), signature_of(thinking).encode())


def _check_calls_open_with_thinking(messages: list[Any]) -> None:
    """The assistant message before the last one, when the last one answers its tool calls, must open
    with a thinking block (the API's rule for the latest tool use; earlier ones it does not check)."""
    if len(messages) < 2 or not holds_tool_results(messages[-1]):
        return
    assistant = messages[-2]
    content = assistant.get("content") if isinstance(assistant, dict) else None
    first = content[0] if isinstance(content, list) and content else None
    kind = first.get("type") if isinstance(first, dict) else "text"
    if kind not in _THINKING:
        index = len(messages) - 2
        raise bad_request(
            f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{kind}`. When `thinking` is enabled, a final `assistant` message must start with a thinking "
            "block (before the latest set of `tool_use` and `tool_result` blocks). Send back the thinking "
            "blocks of the answer that made the calls, or disable `thinking`."
        )
