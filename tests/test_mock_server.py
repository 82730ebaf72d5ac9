"""Integration tests of the mock AI API server: real HTTP on loopback, no mocked network.

Two ways to run the server are covered: as a subprocess through its CLI (what benchmarks do), and in
process through `MockServer`, which serves in this thread's gevent hub; the blocking HTTP clients of
the in-process tests therefore run in gevent's thread pool while the hub keeps serving.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import gevent
import pytest

from locust_aiapi.mock import MockConfig, MockProcess, MockServer, MockStartError

T = TypeVar("T")
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
HELLO = [{"role": "user", "content": "Say hello to the load test, please."}]  # 35 chars -> 8 tokens
STARTUP_TIMEOUT_S = 20.0


# ---------------------------------------------------------------------------------------------------
# A small blocking HTTP client (http.client: an HTTP implementation independent of the server's)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stream:
    status: int
    headers: http.client.HTTPMessage
    events: list[str]  # the payload of every `data:` line, in order
    arrival_s: list[float]  # perf_counter() when each data line was read
    before_send_s: float  # perf_counter() right before the request was sent
    sent_s: float  # perf_counter() right after the request was sent

    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(event) for event in self.events if event != "[DONE]"]

    def content_indices(self) -> list[int]:
        return [i for i, event in enumerate(self.events) if '"delta":{"content"' in event]


def _connect(base_url: str) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)


def _headers(extra: dict[str, str] | None) -> dict[str, str]:
    return {"content-type": "application/json", **(extra or {})}


def request(
    base_url: str,
    method: str,
    path: str,
    payload: object = None,
    headers: dict[str, str] | None = None,
    raw_body: bytes | None = None,
) -> Response:
    body = raw_body if raw_body is not None else (None if payload is None else json.dumps(payload).encode())
    connection = _connect(base_url)
    try:
        connection.request(method, path, body=body, headers=_headers(headers))
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def post(base_url: str, path: str, payload: object, headers: dict[str, str] | None = None) -> Response:
    return request(base_url, "POST", path, payload, headers)


def stream_chat(base_url: str, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Stream:
    connection = _connect(base_url)
    try:
        body = json.dumps({"model": "gpt-4o-mini", "messages": HELLO, "stream": True, **payload})
        before_send_s = time.perf_counter()
        connection.request("POST", CHAT, body=body, headers=_headers(headers))
        sent_s = time.perf_counter()
        response = connection.getresponse()
        events: list[str] = []
        arrival_s: list[float] = []
        while line := response.readline():
            if line.startswith(b"data: "):
                arrival_s.append(time.perf_counter())
                events.append(line[len(b"data: ") :].rstrip(b"\r\n").decode())
        return Stream(response.status, response.headers, events, arrival_s, before_send_s, sent_s)
    finally:
        connection.close()


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking client call in a real thread while this thread's hub serves the in-process mock."""
    result: T = gevent.get_hub().threadpool.apply(function, args)
    return result


# ---------------------------------------------------------------------------------------------------
# Fixtures: the mock as a subprocess, and in process


class CliProcess:
    """The CLI contract by hand: one stdout line, the ready file, exit 0 on SIGTERM, nothing else printed."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.ready_file = tmp_path / f"ready-{os.urandom(4).hex()}"
        command = [sys.executable, "-m", "locust_aiapi.mock", "--port", "0"]
        command += ["--ready-file", str(self.ready_file)]
        self.process = subprocess.Popen(
            [*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.base_url = self._wait_until_ready()

    def _wait_until_ready(self) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("the mock server did not start")
            time.sleep(0.02)
        base_url = self.ready_file.read_text()
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == f"locust-aiapi-mock listening on {base_url}\n"
        return base_url

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, then the exit code and whatever else the process printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        stdout, stderr = self.process.communicate(timeout=20)
        return self.process.returncode, stdout, stderr


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fast subprocess mock with default settings except timing; exits cleanly on SIGTERM."""
    timing = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12")
    mock = CliProcess(tmp_path_factory.mktemp("mock"), *timing)
    yield mock.base_url
    assert mock.stop() == (0, "", "")


@pytest.fixture
def mock_server() -> Iterator[Callable[..., str]]:
    """Start in-process servers with `MockConfig` overrides; stops them after the test."""
    servers: list[MockServer] = []

    def start(**overrides: Any) -> str:
        config = MockConfig(**{"port": 0, "ttft_ms": 5.0, "itl_ms": 1.0, "output_tokens": 12, **overrides})
        servers.append(MockServer(config))
        return servers[-1].start()

    yield start
    for server in servers:
        server.stop()


# ---------------------------------------------------------------------------------------------------
# Streaming chat


def test_stream_structure_matches_openai(mock_url: str) -> None:
    stream = stream_chat(mock_url, {"stream_options": {"include_usage": True}})
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["x-request-id"].startswith("req_")
    assert int(stream.headers["openai-processing-ms"]) >= 0
    assert int(stream.headers["x-ratelimit-limit-requests"]) > 0
    assert stream.headers["x-ratelimit-remaining-requests"].isdigit()
    assert stream.headers["x-ratelimit-reset-requests"]
    assert stream.events[-1] == "[DONE]"
    role, *content, finish, usage_chunk = stream.chunks()
    assert role["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": "", "refusal": None},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert len(content) == 12
    for chunk in content:
        assert list(chunk) == ["id", "object", "created", "model", "system_fingerprint", "choices", "usage"]
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "gpt-4o-mini"
        assert chunk["system_fingerprint"] == "fp_mock"
        assert chunk["usage"] is None
        [choice] = chunk["choices"]
        assert choice["index"] == 0 and choice["logprobs"] is None and choice["finish_reason"] is None
        assert list(choice["delta"]) == ["content"] and choice["delta"]["content"]
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] == "stop"
    assert finish["usage"] is None
    assert usage_chunk["choices"] == []
    counts = dict(usage_chunk["usage"])
    details = counts.pop("prompt_tokens_details")  # what the prefix cache held (see test_mock_inference)
    assert counts == {"prompt_tokens": 8, "completion_tokens": 12, "total_tokens": 20}
    assert details["audio_tokens"] == 0 and 0 <= details["cached_tokens"] <= 8
    assert len({chunk["id"] for chunk in stream.chunks()}) == 1
    assert role["id"].startswith("chatcmpl-")


def test_stream_without_include_usage_has_no_usage(mock_url: str) -> None:
    stream = stream_chat(mock_url, {})
    chunks = stream.chunks()
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.events[-1] == "[DONE]"


@pytest.mark.parametrize("limit_field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_the_answer_with_finish_reason_length(mock_url: str, limit_field: str) -> None:
    stream = stream_chat(mock_url, {limit_field: 5, "stream_options": {"include_usage": True}})
    chunks = stream.chunks()
    assert len(stream.content_indices()) == 5
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 5

    body = post(mock_url, CHAT, {"model": "gpt-4.1", "messages": HELLO, limit_field: 3}).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_tokens_per_chunk_and_usage_counts_tokens_not_chunks(mock_server: Callable[..., str]) -> None:
    url = mock_server(output_tokens=10, tokens_per_chunk=3)
    stream = in_thread(stream_chat, url, {"stream_options": {"include_usage": True}})
    content = [stream.chunks()[i]["choices"][0]["delta"]["content"] for i in stream.content_indices()]
    assert len(content) == 4  # 3 + 3 + 3 + 1 tokens
    assert stream.chunks()[-1]["usage"]["completion_tokens"] == 10


def test_non_streamed_completion(mock_url: str) -> None:
    response = post(mock_url, CHAT, {"model": "gpt-4.1", "messages": HELLO})
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4.1"
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    counts = dict(body["usage"])
    details = counts.pop("prompt_tokens_details")  # what the prefix cache held (see test_mock_inference)
    assert counts == {"prompt_tokens": 8, "completion_tokens": 12, "total_tokens": 20}
    assert details["audio_tokens"] == 0 and 0 <= details["cached_tokens"] <= 8


def test_same_seed_gives_the_same_text(mock_server: Callable[..., str]) -> None:
    first, second = mock_server(seed=7), mock_server(seed=7)
    texts = [in_thread(post, url, CHAT, {"messages": HELLO}).json() for url in (first, second)]
    assert texts[0]["choices"][0]["message"] == texts[1]["choices"][0]["message"]


# ---------------------------------------------------------------------------------------------------
# Timing and capacity


def test_ttft_and_itl_follow_the_configuration(tmp_path: Path) -> None:
    with MockProcess(["--ttft-ms", "200", "--itl-ms", "20", "--output-tokens", "10"]) as mock:
        stream_chat(mock.url, {"max_tokens": 1})  # warm-up: first-request costs stay out of the numbers
        stream = stream_chat(mock.url, {})
    content = stream.content_indices()
    ttft_ms = (stream.arrival_s[content[0]] - stream.sent_s) * 1000
    assert 190 <= ttft_ms <= 260
    gaps_ms = [(stream.arrival_s[b] - stream.arrival_s[a]) * 1000 for a, b in itertools.pairwise(content)]
    assert len(gaps_ms) == 9
    assert 15 <= sum(gaps_ms) / len(gaps_ms) <= 30
    # Due times are absolute, so the whole stream is not late by the sum of per-chunk delays.
    assert 170 <= sum(gaps_ms) <= 240


def _wait_for_stats(url: str, condition: Callable[[dict[str, Any]], bool], timeout_s: float = 2.0) -> None:
    deadline_s = time.monotonic() + timeout_s
    while not condition(in_thread(request, url, "GET", "/mock/stats").json()):
        assert time.monotonic() < deadline_s, "the mock never reached the expected state"
        gevent.sleep(0.01)


def test_requests_queue_beyond_max_concurrency(mock_server: Callable[..., str]) -> None:
    url = mock_server(max_concurrency=1, ttft_ms=300.0, itl_ms=5.0, output_tokens=4)
    pool = gevent.get_hub().threadpool
    first = pool.spawn(stream_chat, url, {})
    _wait_for_stats(url, lambda stats: stats["generating"] == 1)
    second = pool.spawn(stream_chat, url, {})
    _wait_for_stats(url, lambda stats: stats["queued"] == 1)
    streams: list[Stream] = [first.get(), second.get()]
    assert all(stream.events[-1] == "[DONE]" for stream in streams)
    # The slot passes on when the first stream ends; the second's TTFT starts counting only then.
    second_first_content_s = streams[1].arrival_s[streams[1].content_indices()[0]]
    assert (second_first_content_s - streams[0].arrival_s[-1]) * 1000 >= 280
    assert (second_first_content_s - streams[1].sent_s) * 1000 >= 300


def test_capacity_hands_slots_over_in_fifo_order() -> None:
    from locust_aiapi.mock._capacity import Capacity, QueueFullError

    capacity = Capacity(limit=1, max_queue=3)
    served: list[int] = []

    def generate(index: int) -> None:
        with capacity.admit() as slot:
            slot.wait()
            served.append(index)
            gevent.sleep(0.005)

    greenlets = [gevent.spawn(generate, index) for index in range(4)]
    gevent.sleep(0)
    assert (capacity.active, capacity.queued) == (1, 3)
    with pytest.raises(QueueFullError):
        capacity.admit()
    while len(served) < 2:  # the queue has room again once the second request has its slot
        gevent.sleep(0.001)
    late = gevent.spawn(generate, 99)
    gevent.joinall([*greenlets, late], raise_error=True)
    assert served == [0, 1, 2, 3, 99]
    assert (capacity.active, capacity.queued) == (0, 0)


def test_full_queue_answers_429_at_once(mock_server: Callable[..., str]) -> None:
    url = mock_server(max_concurrency=1, max_queue=1, ttft_ms=500.0)
    pool = gevent.get_hub().threadpool
    pending = [pool.spawn(post, url, CHAT, {"messages": HELLO}) for _ in range(3)]
    responses: list[Response] = [result.get() for result in pending]
    assert sorted(r.status for r in responses) == [200, 200, 429]
    [rejected] = [r for r in responses if r.status == 429]
    assert rejected.json()["error"]["code"] == "rate_limit_exceeded"


# ---------------------------------------------------------------------------------------------------
# Fault injection


def _assert_rate_limited(response: Response) -> None:
    assert response.status == 429
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert error["param"] is None and error["message"]


def _assert_server_error(response: Response) -> None:
    assert response.status == 500
    assert response.json()["error"]["type"] == "server_error"


def _assert_stream_error(stream: Stream) -> None:
    assert stream.status == 200
    error = json.loads(stream.events[-1])["error"]
    assert (set(error), error["type"], error["code"]) == ({"message", "type", "code"}, "server_error", None)
    assert 1 <= len(stream.content_indices()) <= 3
    assert "[DONE]" not in stream.events


def _assert_truncated(stream: Stream) -> None:
    assert stream.status == 200  # and http.client read the chunked body to its proper end
    assert 1 <= len(stream.content_indices()) <= 3
    assert stream.events[-1] != "[DONE]"
    assert all(choice["finish_reason"] is None for chunk in stream.chunks() for choice in chunk["choices"])


def test_faults_forced_by_header(mock_url: str) -> None:
    for path, payload in ((CHAT, {"messages": HELLO}), (EMBEDDINGS, {"input": "x"})):
        _assert_rate_limited(post(mock_url, path, payload, {"x-mock-fault": "429"}))
        _assert_server_error(post(mock_url, path, payload, {"x-mock-fault": "500"}))
    _assert_stream_error(stream_chat(mock_url, {}, {"x-mock-fault": "stream_error"}))
    _assert_truncated(stream_chat(mock_url, {}, {"x-mock-fault": "truncate"}))
    assert post(mock_url, CHAT, {"messages": HELLO}, {"x-mock-fault": "nonsense"}).status == 400


def test_truncated_stream_leaves_the_connection_usable(mock_url: str) -> None:
    connection = _connect(mock_url)
    try:
        body = json.dumps({"messages": HELLO, "stream": True})
        connection.request("POST", CHAT, body=body, headers={"x-mock-fault": "truncate"})
        assert b"[DONE]" not in connection.getresponse().read()
        connection.request("GET", "/health")
        assert connection.getresponse().read() == b'{"status":"ok"}'
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("rate_field", "check"),
    [
        ("rate_429", lambda url: _assert_rate_limited(post(url, CHAT, {"messages": HELLO}))),
        ("rate_500", lambda url: _assert_server_error(post(url, EMBEDDINGS, {"input": "x"}))),
        ("rate_stream_error", lambda url: _assert_stream_error(stream_chat(url, {}))),
        ("rate_truncate", lambda url: _assert_truncated(stream_chat(url, {}))),
    ],
)
def test_faults_at_rate_one(
    mock_server: Callable[..., str], rate_field: str, check: Callable[[str], None]
) -> None:
    url = mock_server(**{rate_field: 1.0})
    in_thread(check, url)
    in_thread(check, url)
    stats = in_thread(request, url, "GET", "/mock/stats").json()
    assert stats["outcomes"]["ok"] == 0
    assert sum(stats["outcomes"].values()) == 2


def test_stream_faults_do_not_apply_to_non_streamed_requests(mock_server: Callable[..., str]) -> None:
    url = mock_server(rate_truncate=1.0)
    assert in_thread(post, url, CHAT, {"messages": HELLO}).json()["choices"][0]["finish_reason"] == "stop"


# ---------------------------------------------------------------------------------------------------
# Ground-truth recording


def test_record_file_has_one_line_per_request_and_is_flushed_on_sigterm(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    timing = ("--ttft-ms", "50", "--itl-ms", "5", "--output-tokens", "6")
    mock = MockProcess([*timing, "--record", str(record)])
    with mock:
        stream = stream_chat(mock.url, {})
        post(mock.url, CHAT, {"messages": HELLO}, {"x-mock-fault": "429"})
        post(mock.url, EMBEDDINGS, {"input": ["a", "b"]})
        request(mock.url, "GET", "/health")  # control plane: not recorded
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [line["endpoint"] for line in lines] == [CHAT, CHAT, EMBEDDINGS]
    streamed, limited, embedded = lines
    keys = {"request_id", "endpoint", "fault", "received_s", "first_token_send_s", "first_token_s", "end_s"}
    assert keys | {"completion_tokens", "prompt_tokens"} <= set(streamed)
    assert streamed["request_id"] == stream.headers["x-request-id"]
    assert streamed["fault"] is None and streamed["completion_tokens"] == 6 and streamed["prompt_tokens"] == 8
    # perf_counter() is CLOCK_MONOTONIC: the server's stamps fall between the client's.
    # Only causal order is certain: the client may read a chunk before the server's sendall returns.
    first_content_s = stream.arrival_s[stream.content_indices()[0]]
    assert stream.before_send_s < streamed["received_s"] < streamed["first_token_send_s"]
    assert streamed["first_token_send_s"] < streamed["first_token_s"] < streamed["end_s"]
    assert streamed["first_token_send_s"] < first_content_s
    assert abs(streamed["first_token_s"] - first_content_s) < 0.05
    assert 45 <= (streamed["first_token_s"] - streamed["received_s"]) * 1000 <= 150
    assert (limited["fault"], limited["first_token_s"], limited["completion_tokens"]) == ("429", None, 0)
    assert embedded["prompt_tokens"] == 2 and embedded["fault"] is None


# ---------------------------------------------------------------------------------------------------
# Embeddings, models, errors


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(value * value for value in vector))


def test_embeddings_float(mock_url: str) -> None:
    body = post(mock_url, EMBEDDINGS, {"model": "text-embedding-3-small", "input": ["alpha", "beta"]}).json()
    assert body["object"] == "list" and body["model"] == "text-embedding-3-small"
    assert [item["index"] for item in body["data"]] == [0, 1]
    assert all(item["object"] == "embedding" for item in body["data"])
    first, second = (item["embedding"] for item in body["data"])
    assert len(first) == len(second) == 1536
    assert abs(_norm(first) - 1) < 1e-5 and first != second
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    again = post(mock_url, EMBEDDINGS, {"input": "alpha"}).json()["data"][0]["embedding"]
    assert again == first


def test_embeddings_dimensions_and_large_model(mock_url: str) -> None:
    large = post(mock_url, EMBEDDINGS, {"model": "text-embedding-3-large", "input": "x"}).json()
    assert len(large["data"][0]["embedding"]) == 3072
    short = post(mock_url, EMBEDDINGS, {"input": "x", "dimensions": 256}).json()["data"][0]["embedding"]
    assert len(short) == 256 and abs(_norm(short) - 1) < 1e-5
    tokens = post(mock_url, EMBEDDINGS, {"input": [[1, 2, 3], [4, 5]], "dimensions": 8}).json()
    assert [len(item["embedding"]) for item in tokens["data"]] == [8, 8]
    assert tokens["usage"]["prompt_tokens"] == 5
    assert post(mock_url, EMBEDDINGS, {"input": "x", "dimensions": 5000}).status == 400


def test_embeddings_base64_is_little_endian_float32(mock_url: str) -> None:
    payload = {"input": "alpha", "dimensions": 64}
    floats = post(mock_url, EMBEDDINGS, payload).json()["data"][0]["embedding"]
    as_base64 = post(mock_url, EMBEDDINGS, {**payload, "encoding_format": "base64"}).json()
    encoded = as_base64["data"][0]["embedding"]
    decoded = array("f", base64.b64decode(encoded))
    if sys.byteorder == "big":
        decoded.byteswap()
    assert decoded.tolist() == floats


def test_models_health_and_stats(mock_url: str) -> None:
    models = request(mock_url, "GET", "/v1/models").json()
    assert models["object"] == "list"
    ids = {model["id"] for model in models["data"]}
    assert {"gpt-4.1", "gpt-4o-mini", "text-embedding-3-small", "text-embedding-3-large"} <= ids
    health = request(mock_url, "GET", "/health")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    stats = request(mock_url, "GET", "/mock/stats").json()
    assert stats["requests"]["/v1/models"] >= 1
    assert {"ok", "rate_limited", "server_error", "stream_error", "truncated"} <= set(stats["outcomes"])
    assert stats["in_flight"] == 1  # this very request
    assert stats["queued"] == 0


@pytest.mark.parametrize(
    ("method", "path", "raw_body", "status"),
    [
        ("GET", "/v1/nothing-here", None, 404),
        ("POST", CHAT, b"{not json", 400),
        ("POST", CHAT, b'{"model": "gpt-4.1"}', 400),
        ("POST", CHAT, b'{"messages": [], "model": "gpt-4.1"}', 400),
        ("POST", CHAT, b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', 400),
        ("POST", EMBEDDINGS, b'{"model": "text-embedding-3-small"}', 400),
        ("POST", EMBEDDINGS, b'{"input": ""}', 400),
    ],
)
def test_client_errors_have_openai_error_bodies(
    mock_url: str, method: str, path: str, raw_body: bytes | None, status: int
) -> None:
    response = request(mock_url, method, path, raw_body=raw_body)
    assert response.status == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]


def test_api_key_is_enforced_on_v1_endpoints(mock_server: Callable[..., str]) -> None:
    url = mock_server(api_key="sekret")
    missing = in_thread(post, url, CHAT, {"messages": HELLO})
    wrong = in_thread(post, url, CHAT, {"messages": HELLO}, {"authorization": "Bearer nope"})
    right = in_thread(post, url, CHAT, {"messages": HELLO}, {"authorization": "Bearer sekret"})
    assert (missing.status, wrong.status, right.status) == (401, 401, 200)
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert in_thread(request, url, "GET", "/health").status == 200


# ---------------------------------------------------------------------------------------------------
# The official SDK as a client


def test_official_openai_sdk(mock_url: str) -> None:
    import openai  # a dev dependency: the official SDK must work against the mock
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="test", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices]
        assert chunks[0].choices[0].delta.role == "assistant"
        assert len([piece for piece in pieces if piece]) == 12
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
        model = "text-embedding-3-small"
        as_floats = client.embeddings.create(model=model, input="hi", encoding_format="float")
        vector = as_floats.data[0].embedding
        assert len(vector) == 1536 and all(isinstance(value, float) for value in vector)
        as_base64 = client.embeddings.create(model=model, input="hi", encoding_format="base64")
        # Recent SDKs return the string as-is when the caller chose base64 explicitly.
        raw: Any = as_base64.data[0].embedding
        decoded = array("f", base64.b64decode(raw)).tolist() if isinstance(raw, str) else raw
        assert decoded == vector
        by_default = client.embeddings.create(model=model, input="hi")  # the SDK asks for base64 and decodes
        assert by_default.data[0].embedding == vector


# ---------------------------------------------------------------------------------------------------
# Command line


@pytest.mark.parametrize(
    "args",
    [
        ["--rate-429", "1.5"],
        ["--rate-truncate", "-0.1"],
        ["--ttft-ms", "-5"],
        ["--max-concurrency", "-1"],
        ["--tokens-per-chunk", "0"],
        ["--port", "abc"],
        ["--rate-429", "0.7", "--rate-500", "0.7"],
    ],
)
def test_bad_cli_values_exit_2_with_one_line(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "locust_aiapi.mock", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("locust-aiapi-mock: error: ")


def test_console_script_help() -> None:
    script = Path(sys.executable).with_name("locust-aiapi-mock")  # installed by pip with the package
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for option in ("--ttft-ms", "--itl-ms", "--max-concurrency", "--rate-429", "--record", "--ready-file"):
        assert option in result.stdout


def test_mock_process_reports_a_failed_start_with_the_server_output(tmp_path: Path) -> None:
    log = tmp_path / "mock.log"
    with pytest.raises(MockStartError, match="--rate-500: must be a probability"):
        MockProcess(["--rate-500", "2"], log_path=log).start()
    assert "locust-aiapi-mock: error:" in log.read_text()


def test_mock_process_stops_with_exit_code_0() -> None:
    mock = MockProcess(["--ttft-ms", "1"])
    url = mock.start()
    assert request(url, "GET", "/health").status == 200
    assert mock.stop() == 0


def test_cli_exits_0_on_sigint(tmp_path: Path) -> None:
    mock = CliProcess(tmp_path)
    assert request(mock.base_url, "GET", "/health").status == 200
    mock.process.send_signal(signal.SIGINT)
    assert mock.stop() == (0, "", "")
