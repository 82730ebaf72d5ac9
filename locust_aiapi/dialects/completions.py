"""The legacy OpenAI Completions dialect: ``POST /v1/completions`` with a ``prompt``.

What vLLM's, SGLang's and TGI's benchmarks send. Chunks are ``text_completion`` objects whose
choice carries ``text`` instead of a ``delta``; usage comes as in Chat Completions (a final chunk
with empty ``choices`` when ``stream_options.include_usage`` is set), the stream ends with ``[DONE]``.
A chunk with text is a token and visible content; an empty text is a token too (a partial
character), except in the chunk that only carries the ``finish_reason``. The messages of a
``chat()`` call become the prompt, their contents joined by blank lines; ``prompt=...`` in the
call's parameters overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .._errors import ProtocolError
from ._json import (
    PIECES_PER_BLOCK,
    error_message_of,
    excerpt,
    load_json_object,
    short_text,
    usage_of,
)
from .base import CONTENT, TOKEN, ChatCompletion, EmbeddingsDialect
from .openai import OpenAIChatDialect
from .openai_embeddings import OPENAI_EMBEDDINGS
from .openai_stream import OpenAIChatStream, choice_zero

__all__ = ["OPENAI_COMPLETIONS", "CompletionsStream", "OpenAICompletionsDialect"]

_MESSAGE_CHARS: Final = 500


class CompletionsStream(OpenAIChatStream):
    """Parses ``text_completion`` chunks (a ``ChatStreamParser``); errors, usage, ``[DONE]`` and
    choice selection as in :class:`OpenAIChatStream`."""

    __slots__ = ()

    def _feed_choice(self, choice: dict[str, Any]) -> int:
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            text = short_text(finish_reason)
            if text is None:
                raise ProtocolError("finish_reason is not a string")
            self.finish_reason = text
        text = choice.get("text")
        if type(text) is not str or (not text and finish_reason is not None):
            return 0
        self.token_chunks += 1
        if not self.token_chunks % PIECES_PER_BLOCK:
            self._text.compact()
        if not text:
            return TOKEN
        self._text.append(text)
        return TOKEN | CONTENT


@dataclass(frozen=True, slots=True)
class OpenAICompletionsDialect(OpenAIChatDialect):
    """OpenAI legacy Completions (a ``ChatDialect``)."""

    name: str = "openai-completions"
    chat_path: str = "/v1/completions"
    embeddings: EmbeddingsDialect | None = OPENAI_EMBEDDINGS

    def _input(self, messages: list[dict[str, Any]]) -> tuple[str, Any]:
        return "prompt", prompt_of(messages)

    def stream_parser(self) -> CompletionsStream:
        return CompletionsStream()

    def parse_chat_response(self, body: bytes) -> ChatCompletion:
        completion = load_json_object(body, "completion")
        choices = completion.get("choices")
        if not choices or not isinstance(choices, list):
            if completion.get("error") is not None:
                message = excerpt(error_message_of(completion) or "(no message)", _MESSAGE_CHARS)
                raise ProtocolError(f"error instead of a completion: {message}")
            raise ProtocolError("completion has no choices")
        try:
            choice = choice_zero(choices)
            if choice is None or not isinstance(choice.get("text"), str):
                raise ProtocolError("completion has no text in choice 0")
        except (AttributeError, TypeError, LookupError):
            raise ProtocolError("completion has an unexpected structure") from None
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None and short_text(finish_reason) is None:
            raise ProtocolError("finish_reason is not a string")
        return ChatCompletion(
            text=choice["text"],
            reasoning="",
            usage=usage_of(completion.get("usage")),
            finish_reason=short_text(finish_reason),
            model=short_text(completion.get("model")),
        )


def prompt_of(messages: list[dict[str, Any]]) -> str:
    """The messages' text contents joined by blank lines (content parts' texts included)."""
    texts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        if content:
            texts.append(str(content))
    return "\n\n".join(texts)


OPENAI_COMPLETIONS: Final = OpenAICompletionsDialect()
