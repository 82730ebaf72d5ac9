"""The user classes: dialect seams, immutable defaults, records published once, listeners guarded."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from locust import events
from locust.env import Environment

from locust_aiapi import AIChatUser, ConfigurationError, FailureKind, RequestRecord
from locust_aiapi._guard import guarded, listener_errors
from locust_aiapi._run_state import AI_REQUEST_EVENT, attach, state_of
from locust_aiapi.dialects import OpenAIChatDialect
from tests.hostile_scenarios import scenario
from tests.hostile_server import HostileServer


@dataclasses.dataclass(frozen=True)
class HeaderKeyDialect(OpenAIChatDialect):
    """A user's own dialect: OpenAI's wire format on another path, the key in x-api-key."""

    name: str = "header-key"
    chat_path: str = "/custom/chat"

    def auth_headers(self, api_key: str) -> Mapping[str, str]:
        return {"x-api-key": api_key, "anthropic-version": "2023-06-01"}


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer(scenario("normal")) as hostile:
        yield hostile


def environment_for(user: type, host: str) -> Environment:
    user.host = host  # what Locust's runner does with --host
    return Environment(user_classes=[user], host=host, events=events)


@pytest.fixture(autouse=True)
def close_pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every user's connection pool at the end (an unclosed socket is a warning, so an error)."""
    users: list[AIChatUser] = []
    original = AIChatUser.__init__

    def init(self: AIChatUser, environment: Any) -> None:
        original(self, environment)
        users.append(self)

    monkeypatch.setattr(AIChatUser, "__init__", init)
    yield
    for user in users:
        user.client.client.clientpool.close()


def test_a_users_own_dialect_owns_path_and_auth(server: HostileServer) -> None:
    class Mine(AIChatUser):
        dialect = HeaderKeyDialect
        api_key = "sk-test-1234"

    user = Mine(environment_for(Mine, server.url))
    result = user.chat("hello")
    assert result.ok, result.record.failure_message
    request = server.requests[-1]
    assert request.path == "/custom/chat"
    assert request.header("x-api-key") == "sk-test-1234"
    assert request.header("anthropic-version") == "2023-06-01"
    assert request.header("authorization") is None


def test_chat_path_stays_an_override_and_openai_sends_a_bearer_token(server: HostileServer) -> None:
    class Overridden(AIChatUser):
        chat_path = "/v1/other/completions"
        api_key = "sk-test-5678"

    result = Overridden(environment_for(Overridden, server.url)).chat("hello")
    assert result.ok, result.record.failure_message
    assert server.requests[-1].path == "/v1/other/completions"
    assert server.requests[-1].header("authorization") == "Bearer sk-test-5678"


def test_azure_builds_the_deployment_url_from_model_and_api_version(server: HostileServer) -> None:
    class Azure(AIChatUser):
        dialect = "azure-openai"
        api_key = "azure-key-1"
        model = "gpt-4.1"
        api_version = "2025-01-01-preview"

    user = Azure(environment_for(Azure, server.url + "/openai"))  # a host copied with /openai: no doubling
    assert user.chat("hello").ok
    request = server.requests[-1]
    assert request.path == "/openai/deployments/gpt-4.1/chat/completions?api-version=2025-01-01-preview"
    assert request.header("api-key") == "azure-key-1" and request.header("authorization") is None
    assert user.chat("hello", model="my deployment").ok
    assert (
        server.requests[-1].path
        == "/openai/deployments/my%20deployment/chat/completions?api-version=2025-01-01-preview"
    )


def test_embed_in_a_dialect_without_embeddings_says_so_once_and_fails_each_call(
    server: HostileServer, caplog: pytest.LogCaptureFixture
) -> None:
    class Claude(AIChatUser):
        dialect = "anthropic"

    user = Claude(environment_for(Claude, server.url))
    results = [user.embed("text") for _ in range(3)]  # never raises, like any failed request
    assert all(not result.ok for result in results)
    assert {result.record.failure_kind for result in results} == {FailureKind.CLIENT_ERROR}
    assert results[0].record.failure_message == "the anthropic dialect has no embeddings API"
    said = [r.message for r in caplog.records if "has no embeddings API" in r.message]
    assert len(said) == 1 and said[0].startswith("locust-aiapi: Claude.embed(): the anthropic dialect")
    assert server.requests == ()


def test_an_unknown_dialect_name_is_a_configuration_error(server: HostileServer) -> None:
    class Typo(AIChatUser):
        dialect = "opnai"

    with pytest.raises(ConfigurationError, match="opnai"):
        Typo(environment_for(Typo, server.url))


def test_mutable_class_defaults_are_read_only() -> None:
    for name in ("extra_headers", "extra_body"):
        value = getattr(AIChatUser, name)
        assert isinstance(value, MappingProxyType)
        with pytest.raises(TypeError):
            value["x"] = "y"  # type: ignore[index]


def test_the_published_record_is_never_mutated_after_the_event(server: HostileServer) -> None:
    """With retries after 429, each attempt is a fresh record; what a listener got stays as it was."""
    seen: list[tuple[RequestRecord, dict[str, Any]]] = []

    class Retrying(AIChatUser):
        pass

    with HostileServer(scenario("retry_after", value="0", times=2)) as limited:
        environment = environment_for(Retrying, limited.url)
        user = Retrying(environment)
        user._ai_client._retry = dataclasses.replace(user._ai_client._retry, max_retries=3, base_delay_s=0.01)
        hook = getattr(environment.events, AI_REQUEST_EVENT)
        hook.add_listener(lambda record, **_: seen.append((record, dataclasses.asdict(record))))
        first = user.chat("hello")
        second = user.chat("again")
    assert first.ok and second.ok
    assert [record.attempts for record, _ in seen] == [3, 1]
    assert seen[0][0].retry_after_s is None  # the 429's Retry-After stayed on the failed attempt
    for record, snapshot in seen:
        assert dataclasses.asdict(record) == snapshot
    assert state_of(environment) is attach(environment)
    assert state_of(environment).summary.total.requests == 2  # type: ignore[union-attr]


def test_a_listener_that_raises_is_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def broken(**_: Any) -> None:
        calls.append(1)
        raise RuntimeError("boom")

    listener = guarded(broken, "a broken listener")
    before = listener_errors["a broken listener"]
    for _ in range(3):
        listener(record=None)  # never raises
    assert len(calls) == 3
    assert listener_errors["a broken listener"] == before + 3
    assert sum("a broken listener failed" in r.message for r in caplog.records) == (1 if before == 0 else 0)
