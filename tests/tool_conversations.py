"""What the tool-call tests share: a conversation's chat function through a real client, and a
parser fed with pieces of a stream."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from locust_aiapi import RetryPolicy
from locust_aiapi._client import AIClient
from locust_aiapi._conversation import Conversation
from locust_aiapi._prompts import Prompt
from locust_aiapi._records import ChatResult, RequestRecord, RequestTags
from locust_aiapi._requests import ChatRequest
from locust_aiapi._sse import SSEDecoder
from locust_aiapi.dialects import ChatDialect, ChatStreamParser

from .client_pools import client_pool

_Parser = TypeVar("_Parser", bound=ChatStreamParser)


def conversation_chat(
    dialect: ChatDialect, url: str, stream: bool, reported: Callable[[RequestRecord], None] = lambda _r: None
) -> Callable[..., ChatResult]:
    """A :class:`Conversation`'s chat function: each turn a real request to ``url`` (its pool is closed
    after the test), tagged with the conversation and turn."""
    client = AIClient(
        client_pool(network_timeout=10.0, connection_timeout=5.0), {}, dialect, RetryPolicy(), reported
    )

    def chat(prompt: Prompt, **params: Any) -> ChatResult:
        tags = RequestTags(conversation_id=prompt.conversation_id, turn=prompt.turn)
        messages = [dict(message) for message in prompt.messages]
        body = {key: value for key, value in params.items() if key != "name"}  # tools, tool_choice, ...
        request = ChatRequest(
            params.get("name") or "chat", url, "m", messages, stream, extra_body=body, tags=tags
        )
        return client.chat(request)

    return chat


def fed(parser: _Parser, pieces: Iterable[bytes]) -> _Parser:
    """``parser`` after every event of ``pieces``, decoded as one stream."""
    decoder = SSEDecoder()
    for piece in pieces:
        for event in decoder.feed(piece):
            parser.feed(event)
    return parser


def ask_then_answer_calls(
    conversation: Conversation, question: str, results: Iterable[str]
) -> tuple[ChatResult, ChatResult]:
    """Ask ``question``, answer each tool call of the answer with the next of ``results``, then reply:
    the first answer and the reply."""
    first = conversation.ask(question)
    assert first.ok, first.record.failure_message
    for call, result in zip(first.tool_calls, results, strict=True):
        conversation.add_tool_result(call.id, result)
    return first, conversation.reply()
