"""Multi-turn conversations: ``conv = self.conversation(system=...)``, then ``conv.ask("...")`` per turn.

A :class:`Conversation` keeps the history, sends all of it with each new user turn, and appends the
assistant's answer (its text; its reasoning only with ``keep_reasoning=True``, since OpenAI-compatible
servers such as DeepSeek reject ``reasoning_content`` sent back). A failed turn leaves no trace in the
history (the user message is taken back), but it keeps its turn number: the record says what happened.
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
from ._records import ChatResult

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
        if self.turn:
            seconds = self._think()
            if seconds > 0:
                gevent.sleep(seconds)
        self.turn += 1
        self.history.append({"role": "user", "content": text})
        prompt = Prompt(self.messages(), conversation_id=self.id, turn=self.turn)
        params.setdefault("name", self.name)
        result = self._chat(prompt, **params)
        if result.ok:
            answer: dict[str, Any] = {"role": "assistant", "content": result.text}
            if self.keep_reasoning and result.reasoning:
                answer["reasoning_content"] = result.reasoning
            self.history.append(answer)
        else:
            self.history.pop()
        return result

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


def _tokens(messages: Any) -> int:
    return sum(estimate_tokens(str(message.get("content") or "")) for message in messages)


def _within_budget(history: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest exchanges whose estimate fits ``budget``; the last (new) user message always stays."""
    start = 0
    while start < len(history) - 1 and _tokens(history[start:]) > budget:
        start += 1
        while start < len(history) - 1 and history[start]["role"] != "user":
            start += 1  # never open with an assistant answer whose question was dropped
    return history[start:]
