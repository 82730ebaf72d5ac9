"""Azure OpenAI: deployment URLs, the api-key header, content-filter chunks, retry-after-ms, and the
official ``AzureOpenAI`` client against the mock's deployment routes."""

from __future__ import annotations

import http.client
import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson
import pytest

from locust_aiapi._records import RequestKind, RequestRecord
from locust_aiapi._retry import parse_retry_after_ms, retry_after_s_of
from locust_aiapi._stream import StreamRecorder
from locust_aiapi.dialects import AZURE_OPENAI, AzureOpenAIDialect, chat_path_for, embeddings_path_for
from locust_aiapi.dialects.azure import AZURE_EMBEDDINGS
from locust_aiapi.mock import MockProcess

if TYPE_CHECKING:
    import openai
else:  # imported after Locust, whose gevent monkey-patching must come before the SDK imports ssl
    openai = importlib.import_module("openai")

KEY = "azure-test-key"
VERSION = "2024-10-21"
HELLO = [{"role": "user", "content": "Say hello to the load test, please."}]


def test_paths_carry_the_deployment_and_the_api_version() -> None:
    assert (
        chat_path_for(AZURE_OPENAI, "gpt-4.1", None)
        == f"/openai/deployments/gpt-4.1/chat/completions?api-version={VERSION}"
    )
    assert chat_path_for(AZURE_OPENAI, "gpt-4.1", "2025-04-01-preview").endswith(
        "?api-version=2025-04-01-preview"
    )
    fixed = AzureOpenAIDialect(deployment="prod/gpt", api_version="2024-06-01")
    assert (
        chat_path_for(fixed, "gpt-4.1", None)
        == "/openai/deployments/prod%2Fgpt/chat/completions?api-version=2024-06-01"
    )
    assert embeddings_path_for(AZURE_EMBEDDINGS, "text-embedding-3-small", None) == (
        f"/openai/deployments/text-embedding-3-small/embeddings?api-version={VERSION}"
    )
    assert AZURE_OPENAI.auth_headers("k") == {"api-key": "k"}
    body = orjson.loads(
        AZURE_OPENAI.build_chat_request(
            model="m", messages=HELLO, max_tokens=5, temperature=None, stream=True, extra_body={}
        )
    )
    assert body["stream_options"] == {"include_usage": True}


def test_retry_after_ms_is_preferred_to_retry_after() -> None:
    assert retry_after_s_of("1500", "2", 0.0) == 1.5
    assert retry_after_s_of(None, "2", 0.0) == 2.0
    assert retry_after_s_of("soon", "2", 0.0) == 2.0
    assert [parse_retry_after_ms(v) for v in ("", "-1", "inf", "nan", "250")] == [
        None,
        None,
        None,
        None,
        0.25,
    ]


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    args = ["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "6", "--api-key", KEY]
    with MockProcess(args) as mock:
        yield mock.url


def test_the_mock_stream_opens_with_a_content_filter_chunk_that_is_not_a_token(mock_url: str) -> None:
    url = urlsplit(mock_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=20)
    body = AZURE_OPENAI.build_chat_request(
        model="gpt-4.1", messages=HELLO, max_tokens=None, temperature=None, stream=True, extra_body={}
    )
    try:
        path = chat_path_for(AZURE_OPENAI, "gpt-4.1", None)
        connection.request("POST", path, body, {"api-key": KEY, "content-type": "application/json"})
        raw = connection.getresponse().read()
        connection.request("POST", path.partition("?")[0], body, {"api-key": KEY})
        unversioned = connection.getresponse()
        assert (unversioned.status, orjson.loads(unversioned.read())["error"]["message"]) == (
            404,
            "Resource not found",
        )
    finally:
        connection.close()
    first = orjson.loads(raw.split(b"\n\n")[0].removeprefix(b"data: "))
    assert first["choices"] == [] and first["prompt_filter_results"][0]["prompt_index"] == 0
    record = RequestRecord("chat", RequestKind.CHAT, "gpt-4.1", True, start_epoch_s=0.0, start_s=0.0)
    recorder = StreamRecorder(record, AZURE_OPENAI.stream_parser())
    recorder.feed(raw, 1.0)
    recorder.end(2.0)
    assert record.ok and record.output_tokens == 6 and len(record.token_chunk_times_s) == 6


def test_the_official_azure_client_streams_chat_and_embeds(mock_url: str) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=mock_url, api_key=KEY, api_version=VERSION, max_retries=0
    ) as client:
        stream = client.chat.completions.create(
            model="gpt-4.1",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
        chunks = list(stream)
        embeddings = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(
                model="gpt-4.1", messages=HELLO, extra_headers={"x-mock-fault": "429"}
            )  # type: ignore[arg-type]
    assert (
        chunks[0].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert {c.model for c in chunks[1:]} == {"gpt-4.1"}
    assert [len(item.embedding) for item in embeddings.data] == [1536, 1536]
    assert limited.value.response.headers["retry-after-ms"] == "1000"
