"""API dialects: the wire formats the I/O loop speaks, as sans-IO request builders and parsers.

``resolve_dialect("openai")`` (or an instance, or a dialect class) gives a :class:`ChatDialect`;
``DIALECTS`` lists the built-in ones by name.
"""

from .anthropic import ANTHROPIC, AnthropicDialect
from .anthropic_stream import AnthropicStream
from .azure import AZURE_OPENAI, AzureOpenAIDialect
from .base import (
    CONTENT,
    TOKEN,
    ChatCompletion,
    ChatDialect,
    ChatStreamParser,
    EmbeddingsDialect,
    EmbeddingsResponse,
    StreamError,
    chat_path_for,
    embeddings_path_for,
    status_failure_kind,
)
from .completions import OPENAI_COMPLETIONS, CompletionsStream, OpenAICompletionsDialect
from .openai import OPENAI, OpenAIChatDialect
from .openai_embeddings import OPENAI_EMBEDDINGS, OpenAIEmbeddingsDialect
from .openai_stream import OpenAIChatStream
from .registry import DIALECTS, resolve_dialect
from .responses import OPENAI_RESPONSES, OpenAIResponsesDialect
from .responses_stream import ResponsesStream

__all__ = [
    "ANTHROPIC",
    "AZURE_OPENAI",
    "AnthropicDialect",
    "AnthropicStream",
    "AzureOpenAIDialect",
    "CONTENT",
    "ChatCompletion",
    "ChatDialect",
    "ChatStreamParser",
    "CompletionsStream",
    "DIALECTS",
    "EmbeddingsDialect",
    "EmbeddingsResponse",
    "OPENAI",
    "OPENAI_COMPLETIONS",
    "OPENAI_EMBEDDINGS",
    "OPENAI_RESPONSES",
    "OpenAIChatDialect",
    "OpenAIChatStream",
    "OpenAICompletionsDialect",
    "OpenAIEmbeddingsDialect",
    "OpenAIResponsesDialect",
    "ResponsesStream",
    "StreamError",
    "TOKEN",
    "chat_path_for",
    "embeddings_path_for",
    "resolve_dialect",
    "status_failure_kind",
]
