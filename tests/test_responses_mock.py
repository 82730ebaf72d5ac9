"""The mock's `/v1/responses` against the official `openai` SDK (responses.create / responses.stream)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from locust_aiapi.mock import MockProcess

if TYPE_CHECKING:
    import openai
else:  # imported after Locust, whose gevent monkey-patching must come before the SDK imports ssl
    openai = importlib.import_module("openai")

KEY = "sk-test"
MODEL = "gpt-4.1"
PROMPT = "Say hello to the load test, please."


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    args = ["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12", "--api-key", KEY]
    with MockProcess(args) as mock:
        yield mock.url


@pytest.fixture
def client(mock_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key=KEY, max_retries=0, timeout=20) as sdk:
        yield sdk


def test_sdk_responses_create(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input=PROMPT, instructions="Be brief.")
    assert response.id.startswith("resp_") and response.status == "completed" and response.model == MODEL
    assert [item.type for item in response.output] == ["message"]
    assert response.output_text
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == ((len(PROMPT) + 9) // 4, 12)


def test_sdk_responses_stream_with_a_reasoning_summary(client: openai.OpenAI) -> None:
    reasoning = {"effort": "low", "summary": "auto"}
    with client.responses.stream(
        model=MODEL, input=[{"role": "user", "content": PROMPT}], reasoning=reasoning
    ) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text and final.usage is not None and final.usage.output_tokens == 12
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert kinds.count("response.reasoning_summary_text.delta") == 3
    assert kinds.count("response.output_text.delta") == 9


def test_sdk_raw_stream_ends_incomplete_at_max_output_tokens(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input=PROMPT, stream=True, max_output_tokens=4))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert sum(e.type == "response.output_text.delta" for e in events) == 4


def test_sdk_sees_the_stream_error_fault_as_response_failed(client: openai.OpenAI) -> None:
    stream = client.responses.create(
        model=MODEL, input=PROMPT, stream=True, extra_headers={"x-mock-fault": "stream_error"}
    )
    last = list(stream)[-1]
    assert last.type == "response.failed"
    assert last.response.error is not None and last.response.error.code == "server_error"


def test_sdk_errors(mock_url: str, client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=MODEL, input=PROMPT, extra_headers={"x-mock-fault": "429"})
    with pytest.raises(openai.BadRequestError, match="input"):
        client.responses.create(model=MODEL, input=[])
    with (
        openai.OpenAI(base_url=f"{mock_url}/v1", api_key="wrong", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.responses.create(model=MODEL, input=PROMPT)
