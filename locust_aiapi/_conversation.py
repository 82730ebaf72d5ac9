"""Multi-turn conversations: ``conv = self.conversation(system=...)``, then ``conv.ask("...")`` per turn.

A :class:`Conversation` keeps the history, sends all of it with each new user turn, and appends the
assistant's answer (its text; its reasoning only with ``keep_reasoning=True``, since OpenAI-compatible
servers such as DeepSeek reject ``reasoning_content`` sent back; its tool calls, where the dialect keeps
them, as OpenAI's ``tool_calls`` with ``content`` null when the answer is only calls, and with them the
answer's signed thinking blocks, which Anthropic requires back with the calls when thinking is on:
``thinking_blocks``, which only its dialect produces and sends). OpenAI requires a
``tool`` message for each call before the next turn: :meth:`Conversation.add_tool_result` adds one, and
:meth:`Conversation.reply` sends the history as it stands to get the answer to them. A failed turn leaves
no trace in the history (the user message is taken back), but it keeps its turn number: the record says
what happened.
With ``history_budget_tokens`` the oldest exchanges are dropped until the estimate fits (the system
message and the new user turn are always sent). Between turns the user thinks: ``think_time_s``, else
the user's ``wait_time`` (an :class:`ArrivalRateUser` paces iterations, not turns: it does not think).

Every record carries ``conversation_id`` and ``turn``, which the per-turn statistics group by.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

import gevent

from ._prompts import ConversationScript, Prompt, estimate_tokens
from ._records import ChatResult, ToolCall

__all__ = ["Conversation"]

_ids = itertools.count(1)
_PROCESS = f"{os.getpid():x}"


class Conversation:
    """One conversation of one user; not shared between users (it is not thread-safe, nor needs to be)."""

    def __init__(
        self,
        chat: Callable[..., ChatResult],
        think: Callable[[], float],
        system: str | None = None,
        *,
        history_budget_tokens: int | None = None,
        keep_reasoning: bool = False,
        name: str | None = None,
    ) -> None:
        if history_budget_tokens is not None and history_budget_tokens < 1:
            raise ValueError("history_budget_tokens must be 1 or more")
        self._chat, self._think = chat, think
        self.id = f"{_PROCESS}-{next(_ids)}"
        self.system = system
        self.history: list[dict[str, Any]] = []  # user and assistant messages, oldest first
        self.turn = 0
        self.history_budget_tokens = history_budget_tokens
        self.keep_reasoning = keep_reasoning
        self.name = name

    def ask(self, text: str, **params: Any) -> ChatResult:
        """Send the next user turn with the history; takes ``chat()``'s keyword arguments."""
        self._pause()
        self.history.append({"role": "user", "content": text})
        result = self._send(params)
        if not result.ok:
            self.history.pop()
        return result

    def add_tool_result(self, tool_call_id: str, content: str) -> None:
        """Answer one of the assistant's tool calls (a ``tool`` message, sent with the next request)."""
        self.history.append({"role": "tool", "tool_call_id": tool_call_id, "content": content})

    def reply(self, **params: Any) -> ChatResult:
        """Send the history as it stands (after :meth:`add_tool_result`) as the next turn, no user text.

        A failed reply leaves the tool results in the history, so that it can be sent again."""
        self._pause()
        return self._send(params)

    def _pause(self) -> None:
        """Think between turns (not before the first)."""
        if self.turn:
            seconds = self._think()
            if seconds > 0:
                gevent.sleep(seconds)

    def _send(self, params: dict[str, Any]) -> ChatResult:
        self.turn += 1
        prompt = Prompt(self.messages(), conversation_id=self.id, turn=self.turn)
        params.setdefault("name", self.name)
        result = self._chat(prompt, **params)
        if result.ok:
            self.history.append(self._answer(result))
        return result

    def _answer(self, result: ChatResult) -> dict[str, Any]:
        answer: dict[str, Any] = {"role": "assistant", "content": _content_of(result)}
        if result.tool_calls:
            answer["tool_calls"] = [call.to_message() for call in result.tool_calls]
            if result.thinking_blocks:  # each as the API takes it back, and where it goes among the calls
                answer["thinking_blocks"] = [
                    {"after_calls": block.after_calls, "block": block.to_block()}
                    for block in result.thinking_blocks
                ]
        if self.keep_reasoning and result.reasoning:
            answer["reasoning_content"] = result.reasoning
        return answer

    def replay(self, script: ConversationScript, **params: Any) -> list[ChatResult]:
        """Ask every user turn of ``script`` in order (stops after a failed turn)."""
        if script.max_tokens is not None:
            params.setdefault("max_tokens", script.max_tokens)
        params.setdefault("name", self.name or script.name)
        results = []
        for text in script.user_turns:
            results.append(self.ask(text, **params))
            if not results[-1].ok:
                break
        return results

    def messages(self) -> tuple[dict[str, Any], ...]:
        """What the next request sends: the system message and the history that fits the budget."""
        head = ({"role": "system", "content": self.system},) if self.system else ()
        history = self.history
        if self.history_budget_tokens is not None:
            history = _within_budget(history, self.history_budget_tokens - _tokens(head))
        return (*head, *history)


def _content_of(result: ChatResult) -> str | None:
    """The answer's visible text; None for an answer that is only tool calls (whose ``text`` is then
    the calls' arguments, one per line)."""
    if result.tool_calls and result.text == _arguments(result.tool_calls):
        return None
    return result.text


def _arguments(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(call.arguments for call in calls)


def _tokens(messages: Any) -> int:
    return sum(estimate_tokens(_message_text(message)) for message in messages)


def _message_text(message: dict[str, Any]) -> str:
    calls = message.get("tool_calls") or ()
    arguments = "".join(str(call["function"]["arguments"]) for call in calls)
    return str(message.get("content") or "") + arguments


def _within_budget(history: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest exchanges whose estimate fits ``budget``; the newest exchange always stays: the last
    user message and what follows it (tool calls and their results: an API refuses a result whose call
    was dropped)."""
    last = next((i for i in range(len(history) - 1, -1, -1) if history[i]["role"] == "user"), 0)
    start = 0
    while start < last and _tokens(history[start:]) > budget:
        start += 1
        while start < last and history[start]["role"] != "user":
            start += 1  # never open with an assistant answer whose question was dropped
    return history[start:]
