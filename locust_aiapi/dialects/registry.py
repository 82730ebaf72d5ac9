"""The dialects known by name, and how a user's choice (a name, an instance, a class) is resolved.

Adding a dialect: write its module in this package, then add its instance to ``_BUILT_IN``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, cast

from .._errors import ConfigurationError
from .anthropic import ANTHROPIC
from .azure import AZURE_OPENAI
from .base import ChatDialect
from .completions import OPENAI_COMPLETIONS
from .openai import OPENAI
from .responses import OPENAI_RESPONSES

__all__ = ["DIALECTS", "resolve_dialect"]

_BUILT_IN: Final[tuple[ChatDialect, ...]] = (
    OPENAI,
    ANTHROPIC,
    OPENAI_RESPONSES,
    AZURE_OPENAI,
    OPENAI_COMPLETIONS,
)

DIALECTS: Final[Mapping[str, ChatDialect]] = MappingProxyType({d.name: d for d in _BUILT_IN})
"""Every built-in dialect by its ``name`` (read-only)."""

_REQUIRED: Final = (
    "name",
    "chat_path",
    "embeddings",
    "auth_headers",
    "build_chat_request",
    "stream_parser",
    "parse_chat_response",
    "parse_error_message",
    "parse_body_error",
)


def resolve_dialect(spec: str | ChatDialect | type) -> ChatDialect:
    """The dialect ``spec`` names: a registered name, a dialect instance, or a dialect class
    (instantiated without arguments). Anything else is a :class:`ConfigurationError`."""
    if isinstance(spec, str):
        dialect = DIALECTS.get(spec.strip().lower())
        if dialect is None:
            known = ", ".join(sorted(DIALECTS))
            raise ConfigurationError(f"unknown AI dialect {spec!r}; known dialects: {known}")
        return dialect
    if isinstance(spec, type):
        cls = spec
        try:
            spec = cls()
        except TypeError as exc:
            raise ConfigurationError(f"the dialect class {cls.__name__} needs arguments: {exc}") from None
    missing = [name for name in _REQUIRED if not hasattr(spec, name)]
    if missing:
        raise ConfigurationError(f"{spec!r} is not a chat dialect: it has no {', '.join(missing)}")
    return cast(ChatDialect, spec)
