"""API dialects: the wire formats the I/O loop speaks, as sans-IO request builders and parsers."""

from .base import CONTENT, TOKEN, ChatCompletion, ChatDialect, ChatStreamParser, StreamError
from .openai import (
    OPENAI,
    OpenAIChatDialect,
    OpenAIChatStream,
    build_embeddings_request,
    parse_embeddings_response,
)

__all__ = [
    "CONTENT",
    "ChatCompletion",
    "ChatDialect",
    "ChatStreamParser",
    "OPENAI",
    "OpenAIChatDialect",
    "OpenAIChatStream",
    "StreamError",
    "TOKEN",
    "build_embeddings_request",
    "parse_embeddings_response",
]
