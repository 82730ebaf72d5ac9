"""The Azure OpenAI dialect: Chat Completions on a deployment URL, the key in ``api-key``.

Paths are ``/openai/deployments/{deployment}/chat/completions?api-version=...`` (and
``.../embeddings?api-version=...``); the deployment is the model name unless the dialect is
given one (``AzureOpenAIDialect(deployment="my-gpt-41")``), the version is the user's
``api_version`` (``--ai-api-version``) or the dialect's default. The wire format is OpenAI's:
Azure's content-filter chunks (empty ``choices``, ``prompt_filter_results``) are parsed by
:mod:`.openai_stream` and are not tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from .base import EmbeddingsDialect
from .openai import OpenAIChatDialect
from .openai_embeddings import OpenAIEmbeddingsDialect

__all__ = [
    "AZURE_API_VERSION",
    "AZURE_EMBEDDINGS",
    "AZURE_OPENAI",
    "AzureEmbeddingsDialect",
    "AzureOpenAIDialect",
]

AZURE_API_VERSION: Final = "2024-10-21"
"""The default ``api-version``: the newest generally available data-plane version we test against."""


def deployment_path(deployment: str, operation: str, api_version: str) -> str:
    """``/openai/deployments/{deployment}/{operation}?api-version={api_version}``, both quoted."""
    version = quote(api_version, safe="")
    return f"/openai/deployments/{quote(deployment, safe='')}/{operation}?api-version={version}"


@dataclass(frozen=True, slots=True)
class AzureEmbeddingsDialect(OpenAIEmbeddingsDialect):
    """OpenAI's embeddings format on an Azure deployment URL."""

    path: str = "/openai/deployments/{deployment}/embeddings"
    api_version: str = AZURE_API_VERSION
    deployment: str | None = None

    def url_path(self, model: str, api_version: str | None) -> str:
        return deployment_path(self.deployment or model, "embeddings", api_version or self.api_version)


AZURE_EMBEDDINGS: Final = AzureEmbeddingsDialect()


@dataclass(frozen=True, slots=True)
class AzureOpenAIDialect(OpenAIChatDialect):
    """Azure OpenAI Chat Completions (a ``ChatDialect``). For Entra ID tokens instead of keys, set
    ``auth_header="Authorization", auth_scheme="Bearer"``."""

    name: str = "azure-openai"
    chat_path: str = "/openai/deployments/{deployment}/chat/completions"
    auth_header: str = "api-key"
    auth_scheme: str = ""
    embeddings: EmbeddingsDialect | None = AZURE_EMBEDDINGS
    api_version: str = AZURE_API_VERSION
    deployment: str | None = None

    def chat_url_path(self, model: str, api_version: str | None) -> str:
        return deployment_path(self.deployment or model, "chat/completions", api_version or self.api_version)


AZURE_OPENAI: Final = AzureOpenAIDialect()
