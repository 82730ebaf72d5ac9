"""Whole customer-service conversations, turn by turn, from our dataset (``data/customer_service.jsonl``).

Each iteration replays one conversation: every user turn is sent with the history so far, the
assistant's answer is appended, and the user thinks 2-5 s between turns. The report's "by conversation
turn" table shows how TTFT and prompt tokens grow with the context. ``--ai-dataset`` replaces the
conversations (ShareGPT files replay their human turns):

    locust -f locustfiles/conversation.py --headless -u 20 -r 5 -t 2m
"""

from __future__ import annotations

from pathlib import Path

from locust import between, task

from locust_aiapi import AIChatUser, ConversationScript, load_dataset

DATASET = Path(__file__).parent / "data" / "customer_service.jsonl"
CONVERSATIONS = [item for item in load_dataset(str(DATASET)) if isinstance(item, ConversationScript)]
SYSTEM = "你是某电商平台的智能客服，回答简洁、礼貌。"  # when a conversation brings none


class CustomerConversationUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    wait_time = between(2, 5)  # think time between turns, and between conversations
    model = "gpt-4.1"
    max_tokens = 300
    prompts = CONVERSATIONS

    @task
    def customer_conversation(self) -> None:
        script = self.next_conversation()
        conversation = self.conversation(system=script.system or SYSTEM, history_budget_tokens=6000)
        conversation.replay(script)  # requests are named after the conversation's topic
