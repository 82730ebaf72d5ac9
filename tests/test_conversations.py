"""Conversations: the history sent grows turn by turn, and every record says its conversation and turn."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from locust_aiapi._conversation import Conversation
from locust_aiapi._prompts import ConversationScript, Prompt
from locust_aiapi._records import ChatResult, FailureKind, RequestKind, RequestRecord
from locust_aiapi.mock import MockProcess

from ._support import ROOT, headless, run_locust

CONVERSATION_CHAT = Path(__file__).parent / "locustfiles" / "conversation_chat.py"


class _FakeChat:
    """Answers every prompt with a fixed text (or fails the turns listed), keeping what was sent."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.sent: list[Prompt] = []
        self.failing = failing

    def __call__(self, prompt: Prompt, **params: Any) -> ChatResult:
        self.sent.append(prompt)
        record = RequestRecord(params.get("name") or "chat", RequestKind.CHAT, "m", True, 0.0, 0.0)
        if len(self.sent) in self.failing:
            record.fail(FailureKind.SERVER_ERROR, "boom")
        return ChatResult(f"answer {len(self.sent)}", "thought", None, record)


def test_the_history_grows_and_answers_are_appended() -> None:
    chat = _FakeChat()
    conversation = Conversation(chat, lambda: 0.0, "be brief")
    for text in ("one", "two", "three"):
        conversation.ask(text)
    roles = [[m["role"] for m in prompt.messages] for prompt in chat.sent]
    assert roles == [
        ["system", "user"],
        ["system", "user", "assistant", "user"],
        ["system", "user", "assistant", "user", "assistant", "user"],
    ]
    assert chat.sent[2].messages[4] == {"role": "assistant", "content": "answer 2"}
    assert [p.turn for p in chat.sent] == [1, 2, 3] and len({p.conversation_id for p in chat.sent}) == 1


def test_a_failed_turn_is_taken_back_and_reasoning_kept_only_when_asked() -> None:
    chat = _FakeChat(failing=frozenset({2}))
    conversation = Conversation(chat, lambda: 0.0, keep_reasoning=True)
    results = conversation.replay(ConversationScript(("a", "b", "c")))
    assert [r.ok for r in results] == [True, False]  # replay stops after a failed turn
    conversation.ask("c")
    assert [m["content"] for m in chat.sent[2].messages] == ["a", "answer 1", "c"]
    assert chat.sent[2].messages[1]["reasoning_content"] == "thought"
    assert chat.sent[2].turn == 3


def test_the_history_budget_drops_the_oldest_exchanges() -> None:
    chat = _FakeChat()
    conversation = Conversation(chat, lambda: 0.0, "s", history_budget_tokens=12)
    for text in ("x" * 16, "y" * 16, "z" * 16):  # four tokens each, answers two or three
        conversation.ask(text)
    last = [str(m["content"]) for m in chat.sent[-1].messages]
    assert last[0] == "s" and last[-1] == "z" * 16
    assert "x" * 16 not in last and last[1] == "y" * 16  # the oldest exchange went, whole


def test_a_conversation_run_against_the_mock_reports_by_turn(tmp_path: Path) -> None:
    dataset = tmp_path / "conversations.jsonl"
    turns = [
        "我的订单什么时候发货？" * 4,
        "订单号是 20241201-77421，请帮我查一下。",
        "那什么时候能到？",
        "好的谢谢",
    ]
    dataset.write_text(json.dumps({"turns": turns, "system": "你是客服"}, ensure_ascii=False) + "\n")
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12"]) as mock:
        run = run_locust(
            CONVERSATION_CHAT, tmp_path,
            headless(mock.url, 3, "4s", "--stop-timeout", "3", "--ai-dataset", str(dataset)),
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in run.records:
        by_conversation[record["conversation_id"]].append(record)
    complete = [rs for rs in by_conversation.values() if len(rs) == 4]
    assert len(complete) >= 5
    for records in complete:
        assert [r["turn"] for r in records] == [1, 2, 3, 4]
        prompt_tokens = [r["prompt_tokens"] for r in records]
        assert prompt_tokens == sorted(prompt_tokens) and prompt_tokens[3] > prompt_tokens[0] + 12
    rows = run.summary["workload"]["turns"]
    assert [row["turn"] for row in rows] == [1, 2, 3, 4]
    assert all(row["ttft_ms"]["count"] > 0 for row in rows)
    assert rows[3]["prompt_tokens"] / rows[3]["count"] > rows[0]["prompt_tokens"] / rows[0]["count"]
    assert "By conversation turn" in run.stderr


def test_the_agent_locustfile_calls_tools_and_sends_their_results(tmp_path: Path) -> None:
    """``locustfiles/agent.py`` against the mock: each question is answered with a tool call, whose
    result goes back with the history (a longer prompt), and that reply is answered in text."""
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12"]) as mock:
        run = run_locust(
            ROOT / "locustfiles" / "agent.py", tmp_path, headless(mock.url, 4, "4s", "--stop-timeout", "3")
        )
    assert run.returncode == 0, run.stderr[-3000:]
    # A user whose wait ends in the loop iteration that stops the run starts its next ask before
    # Locust's kill lands (the kill is a later callback): that request is recorded cancelled, neither
    # success nor failure. At most one per user; nothing else may be anything but a success.
    ended = [r for r in run.records if r["outcome"] != "cancelled"]
    assert len(run.records) - len(ended) <= 4 and all(r["outcome"] == "success" for r in ended)
    asks = [r for r in ended if r["name"] == "agent-ask"]
    answers = [r for r in ended if r["name"] == "agent-answer"]
    # every user asks at least once (its wait of 1-3 s comes after the first task); more is timing
    assert len(asks) >= 4
    assert {r["finish_reason"] for r in asks} == {"tool_calls"} and {r["turn"] for r in asks} == {1}
    assert {r["finish_reason"] for r in answers} == {"stop"} and {r["output_tokens"] for r in answers} == {12}
    assert len(asks) - 4 <= len(answers) <= len(asks)  # the stop may cut the last ones' replies
    by_conversation = {r["conversation_id"]: r for r in asks}
    for answer in answers:
        ask = by_conversation[answer["conversation_id"]]
        assert answer["turn"] == 2 and answer["prompt_tokens"] > ask["prompt_tokens"] + 10
    by_name = run.summary["requests"]
    assert by_name["agent-ask"]["failures"] == 0 and by_name["agent-answer"]["failures"] == 0
