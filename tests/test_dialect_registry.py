"""The dialect seam: a registry by name, immutable dialects, auth and embeddings owned by the dialect."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from locust_aiapi._errors import ConfigurationError
from locust_aiapi.dialects import (
    DIALECTS,
    OPENAI,
    OPENAI_EMBEDDINGS,
    OpenAIChatDialect,
    resolve_dialect,
)
from locust_aiapi.dialects.anthropic import ANTHROPIC
from locust_aiapi.dialects.azure import AZURE_OPENAI
from locust_aiapi.dialects.completions import OPENAI_COMPLETIONS
from locust_aiapi.dialects.responses import OPENAI_RESPONSES


def test_the_registry_names_the_built_in_dialects_and_is_read_only() -> None:
    assert dict(DIALECTS) == {
        "openai": OPENAI,
        "anthropic": ANTHROPIC,
        "openai-responses": OPENAI_RESPONSES,
        "azure-openai": AZURE_OPENAI,
        "openai-completions": OPENAI_COMPLETIONS,
    }
    with pytest.raises(TypeError):
        DIALECTS["mine"] = OPENAI  # type: ignore[index]


@pytest.mark.parametrize("name", ["openai", "OpenAI", " openai "])
def test_resolve_by_name(name: str) -> None:
    assert resolve_dialect(name) is OPENAI


def test_unknown_name_lists_the_known_ones() -> None:
    known = "anthropic, azure-openai, openai, openai-completions, openai-responses"
    with pytest.raises(ConfigurationError, match=rf"unknown AI dialect 'klingon'; known dialects: {known}$"):
        resolve_dialect("klingon")


def test_resolve_an_instance_or_a_class() -> None:
    azure = OpenAIChatDialect(name="azure", auth_header="api-key", auth_scheme="")
    assert resolve_dialect(azure) is azure

    class NoUsage(OpenAIChatDialect):
        def __init__(self) -> None:
            super().__init__(name="no-usage", include_usage=False)

    resolved = resolve_dialect(NoUsage)
    assert isinstance(resolved, NoUsage) and resolved.name == "no-usage"


def test_something_else_is_a_configuration_error() -> None:
    class NotADialect:
        name = "x"

    with pytest.raises(ConfigurationError, match="is not a chat dialect: it has no chat_path, embeddings"):
        resolve_dialect(NotADialect)
    with pytest.raises(ConfigurationError, match="needs arguments"):
        resolve_dialect(_NeedsArguments)


class _NeedsArguments(OpenAIChatDialect):
    def __init__(self, key: str) -> None:
        super().__init__(name=key)


def test_dialects_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        OPENAI.chat_path = "/other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        OPENAI_EMBEDDINGS.path = "/other"  # type: ignore[misc]
    assert OpenAIChatDialect() == OPENAI  # a fresh one is equal: nothing was changed in place


def test_the_dialect_owns_path_auth_and_embeddings() -> None:
    assert (OPENAI.name, OPENAI.chat_path) == ("openai", "/v1/chat/completions")
    assert OPENAI.auth_headers("sk-1") == {"Authorization": "Bearer sk-1"}
    assert OPENAI.auth_headers("") == {}
    azure = OpenAIChatDialect(name="azure", auth_header="api-key", auth_scheme="")
    assert azure.auth_headers("k") == {"api-key": "k"}
    assert OPENAI.embeddings is OPENAI_EMBEDDINGS and OPENAI_EMBEDDINGS.path == "/v1/embeddings"
    assert OpenAIChatDialect(embeddings=None).embeddings is None
    body = OPENAI_EMBEDDINGS.build_request(
        model="m", input="a", dimensions=None, encoding_format="float", extra_body={}
    )
    assert orjson.loads(body) == {"model": "m", "input": "a", "encoding_format": "float"}
