"""An agent's loop: ask with tools, run the tools the model calls, send their results, get the answer.

Each iteration is one customer question. The model (the mock, or a real API) calls ``order_status``
or ``shipping_eta``; the user answers each call with a canned result and replies, up to three
rounds, so every iteration costs two or more requests. The report shows them by name: ``agent-ask``
(the question: TTFT is at the first tool-call delta) and ``agent-answer`` (after the tool results:
the prompt grows by the calls and their results). The mock calls a tool whenever tools are offered
and the conversation does not end with tool results (``locust-aiapi-mock --tool-call-rate 0.5``:
half the time it answers at once):

    locust -f locustfiles/agent.py --headless -u 20 -r 5 -t 2m
    OPENAI_API_KEY=sk-... locust -f locustfiles/agent.py --host https://api.openai.com/v1
"""

from __future__ import annotations

import os
import random

import orjson
from locust import between, task

from locust_aiapi import AIChatUser

QUESTIONS = [
    "我的订单 20241201-77421 到哪了？",
    "订单 20241130-10293 什么时候能到上海？",
    "Where is my order 20241129-55310, and when will it arrive?",
]
ORDER = {"type": "string", "description": "the order number, e.g. 20241201-77421"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "order_status",
            "description": "The status of an order: paid, packed, shipped or delivered.",
            "parameters": {"type": "object", "properties": {"order_id": ORDER}, "required": ["order_id"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "shipping_eta",
            "description": "When a shipped order arrives in a city.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": ORDER, "city": {"type": "string"}},
                "required": ["order_id", "city"],
            },
        },
    },
]
SYSTEM = "你是某电商平台的客服，需要时调用工具查询订单。"
MAX_ROUNDS = 3  # tool rounds per question: a model that keeps calling tools cannot loop forever


def run_tool(name: str, arguments: str) -> str:
    """What our backend would answer: canned, so that the load test measures the model, not the tools."""
    try:
        order = orjson.loads(arguments).get("order_id", "?")
    except (orjson.JSONDecodeError, AttributeError):
        return "error: the arguments are not a JSON object"
    if name == "shipping_eta":
        return f"order {order}: arrives tomorrow before 18:00"
    return f"order {order}: shipped from Hangzhou"


class AgentUser(AIChatUser):
    host = "http://127.0.0.1:8000"
    api_key = os.environ.get("OPENAI_API_KEY")
    model = "gpt-4.1"
    wait_time = between(1, 3)
    max_tokens = 300

    @task
    def ask_the_agent(self) -> None:
        conversation = self.conversation(system=SYSTEM, think_time_s=0)
        result = conversation.ask(random.choice(QUESTIONS), tools=TOOLS, name="agent-ask")
        for _ in range(MAX_ROUNDS):
            if not result.ok or not result.tool_calls:
                return  # a failure is measured already; a text answer ends the question
            for call in result.tool_calls:
                conversation.add_tool_result(call.id, run_tool(call.name, call.arguments))
            result = conversation.reply(tools=TOOLS, name="agent-answer")
