"""Signed thinking, as the Messages API checks it when a conversation sends it back.

Each thinking block the mock sends is signed: an HMAC of its text under a key every mock process
shares, so a block changed in any way (its text, its signature) no longer verifies, wherever it was
served. With thinking on, the API takes tool results only when the assistant message that made the calls
opens with its thinking (``thinking`` or ``redacted_thinking``): a client that drops the blocks gets the
400 the real API sends, and so does one that sends a block changed or made up. The mock never sends
``redacted_thinking``: such a block is taken as it comes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Final

from ._errors import bad_request

__all__ = ["check_thinking", "signature_of"]

_KEY: Final = b"locust-aiapi mock thinking"
_THINKING: Final = ("thinking", "redacted_thinking")


def signature_of(thinking: str) -> str:
    """The signature the mock gives a thinking block with this text."""
    digest = hmac.new(_KEY, thinking.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_thinking(messages: list[Any], thinking_on: bool) -> None:
    """Raise the API's 400 for a thinking block whose signature does not verify, and, with thinking on,
    for tool results whose assistant message does not open with its thinking."""
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or message.get("role") != "assistant":
            continue
        for place, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "thinking" and not _verifies(block):
                where = f"messages.{index}.content.{place}"
                raise bad_request(f"{where}: Invalid `signature` in `thinking` block")
    if thinking_on:
        _check_calls_open_with_thinking(messages)


def _verifies(block: dict[str, Any]) -> bool:
    thinking, signature = block.get("thinking"), block.get("signature")
    if not isinstance(thinking, str) or not isinstance(signature, str):
        return False
    return hmac.compare_digest(signature.encode(), signature_of(thinking).encode())


def _check_calls_open_with_thinking(messages: list[Any]) -> None:
    """The assistant message before the last one, when the last one answers its tool calls, must open
    with a thinking block (the API's rule for the latest tool use; earlier ones it does not check)."""
    if len(messages) < 2 or not _holds_tool_results(messages[-1]):
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


def _holds_tool_results(message: object) -> bool:
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )
