"""TLS: verified by default, one context per process, a failed verification is `tls_error` and the key
never leaves. Real loopback TLS servers (the mock, and a raw impostor that counts what it receives)."""

from __future__ import annotations

import json
import logging
import ssl
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest
import trustme
from gevent.server import StreamServer
from geventhttpclient.client import HTTPClient, HTTPClientPool
from locust import FastHttpUser, task
from locust.env import Environment

from locust_aiapi import AIChatUser, _tls
from locust_aiapi._client import AIClient, ChatRequest
from locust_aiapi._errors import ConfigurationError
from locust_aiapi._records import FailureKind, RequestRecord
from locust_aiapi._retry import RetryPolicy
from locust_aiapi._tls import check_ca_bundle, context_factory, shared_context
from locust_aiapi.dialects import OPENAI
from locust_aiapi.mock import MockConfig, MockConfigError, MockProcess, MockServer, MockStartError

from ._support import headless, run_locust

API_KEY = "sk-tls-test-secret-0123456789"


@dataclass
class Pki:
    ca_bundle: Path  # trusts the serving CA
    cert: Path  # server chain for 127.0.0.1 / localhost from that CA
    key: Path
    impostor_cert: Path  # the same names, from another CA
    impostor_key: Path


PKI_FILES = ("ca.pem", "server.pem", "server.key", "impostor.pem", "impostor.key")


def issue_pki(folder: Path) -> Pki:
    """A CA (``ca.pem``), a server chain for 127.0.0.1 / localhost from it, and an impostor's from
    another CA, as the files of ``PKI_FILES`` in ``folder``."""
    ca, other_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    for name, authority in (("server", ca), ("impostor", other_ca)):
        leaf = authority.issue_cert("127.0.0.1", "localhost")
        leaf.private_key_pem.write_to_path(str(folder / f"{name}.key"))
        (folder / f"{name}.pem").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return Pki(*(folder / name for name in PKI_FILES))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return issue_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def fresh_contexts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, str | None]]:
    """An empty per-process cache, and a list of every context actually built."""
    built: list[tuple[bool, str | None]] = []
    real_build = _tls._build_context

    def counting_build(verify: bool, ca_bundle: str | None) -> ssl.SSLContext:
        built.append((verify, ca_bundle))
        return real_build(verify, ca_bundle)

    monkeypatch.setattr(_tls, "_contexts", {})
    monkeypatch.setattr(_tls, "_build_context", counting_build)
    return built


# -- the context ---------------------------------------------------------------------------------------


def test_the_default_context_verifies_with_tls12_or_later_and_offers_http11() -> None:
    context = shared_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.cert_store_stats()["x509_ca"] > 0  # a CA store was loaded
    assert context is shared_context(True, None) is context_factory()()


def test_a_pool_asking_for_insecure_cannot_switch_off_the_shared_contexts_checks(pki: Pki) -> None:
    factory = context_factory(ca_bundle=str(pki.ca_bundle))
    client = HTTPClient("127.0.0.1", 1, ssl=True, ssl_context_factory=factory, insecure=True)
    context = client._connection_pool.ssl_context
    assert context is factory()
    assert (context.check_hostname, context.verify_mode) == (True, ssl.CERT_REQUIRED)
    unverified = HTTPClient("127.0.0.1", 1, ssl=True, ssl_context_factory=context_factory(False))
    insecure = unverified._connection_pool.ssl_context  # asked with insecure=False: must stay off
    assert (insecure.check_hostname, insecure.verify_mode) == (False, ssl.CERT_NONE)


def test_insecure_logs_one_warning_however_many_users_ask(
    fresh_contexts: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="locust_aiapi._tls"):
        for _ in range(50):
            context_factory(verify=False, ca_bundle="/ignored.pem")()
    assert [r.getMessage() for r in caplog.records] == [_tls.INSECURE_WARNING]
    assert fresh_contexts == [(False, None)]


def test_a_bad_ca_bundle_is_one_clear_configuration_error(tmp_path: Path, pki: Pki) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello\n")
    key_only = pki.key
    cases = {
        str(tmp_path / "missing.pem"): "no such file",
        str(not_pem): "not a PEM certificate bundle",
        str(key_only): "not a PEM certificate bundle",
        str(tmp_path): "no such file",
    }
    for path, expected in cases.items():
        with pytest.raises(ConfigurationError) as raised:
            check_ca_bundle(path)
        message = str(raised.value)
        assert message.startswith(f"--ai-ca-bundle {path}: {expected}"), message
        assert "\n" not in message
    assert check_ca_bundle(str(pki.ca_bundle)) == str(pki.ca_bundle)
    with pytest.raises(ConfigurationError):
        shared_context(True, str(not_pem))


class _TlsUser(AIChatUser):
    abstract = True
    host = "https://127.0.0.1:9"

    @task
    def noop(self) -> None:
        pass


class _LocustDefaultUser(FastHttpUser):
    abstract = True
    host = "https://127.0.0.1:9"


def _pool_contexts(user_class: type, count: int) -> list[ssl.SSLContext]:
    """What ``count`` users' first HTTPS request sets up (no connection is made yet)."""
    environment = Environment(user_classes=[user_class])
    contexts = []
    for _ in range(count):
        user = user_class(environment)
        client = user.client.client.clientpool.get_client(user.host + "/v1/chat/completions")
        contexts.append(client._connection_pool.ssl_context)
    return contexts


def test_200_users_share_one_context_built_once(fresh_contexts: list[Any]) -> None:
    contexts = _pool_contexts(type("U", (_TlsUser,), {}), 200)
    assert fresh_contexts == [(True, None)]
    assert len({id(c) for c in contexts}) == 1
    assert contexts[0].verify_mode is ssl.CERT_REQUIRED and contexts[0].check_hostname


def test_locusts_own_fasthttpuser_builds_a_context_per_user() -> None:
    """The cost removed above, seen on Locust's class (if Locust changes, this says so)."""
    contexts = _pool_contexts(type("U", (_LocustDefaultUser,), {}), 5)
    assert len({id(c) for c in contexts}) == 5


# -- a failed verification: tls_error, not retried, no byte of the request sent -------------------------


class Impostor:
    """A TLS server with a certificate from a CA the client does not trust; counts what it receives."""

    def __init__(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self._context = context
        self.connections = 0
        self.application_bytes = b""
        self.server = StreamServer(("127.0.0.1", 0), self._handle)

    def _handle(self, sock: Any, _address: Any) -> None:
        self.connections += 1
        sock.settimeout(5)
        try:
            tls = self._context.wrap_socket(sock, server_side=True)
        except OSError:
            sock.close()
            return  # the client's alert ("unknown ca") ended the handshake
        with tls:
            try:
                while data := tls.recv(65536):  # bounded: the client closes, or the 5 s timeout ends it
                    self.application_bytes += data
            except OSError:
                pass

    def __enter__(self) -> Impostor:
        self.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop(timeout=1)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_port}"


def _chat_once(
    url: str, factory: Callable[[], ssl.SSLContext], max_retries: int = 3, timeout_s: float = 5.0
) -> RequestRecord:
    records: list[RequestRecord] = []
    pool = HTTPClientPool(
        ssl_context_factory=factory, insecure=False, network_timeout=timeout_s, connection_timeout=timeout_s
    )
    client = AIClient(
        pool=pool,
        headers={"Authorization": f"Bearer {API_KEY}"},
        dialect=OPENAI,
        retry=RetryPolicy(max_retries, 0.01, 0.01),
        report=records.append,
    )
    request = ChatRequest(
        "chat", url + "/v1/chat/completions", "m", [{"role": "user", "content": "hi"}], True
    )
    client.chat(request)
    pool.close()
    assert len(records) == 1
    return records[0]


def test_an_impostor_gets_tls_error_no_retry_and_not_one_byte(pki: Pki) -> None:
    with Impostor(pki.impostor_cert, pki.impostor_key) as impostor:
        record = _chat_once(impostor.url, context_factory(ca_bundle=str(pki.ca_bundle)))
        gevent.sleep(0.2)  # let the impostor's greenlet see the alert
    assert record.failure_kind is FailureKind.TLS_ERROR
    assert record.failure_message == "certificate verify failed: unable to get local issuer certificate"
    assert record.attempts == 1  # max_retries=3, but a trust failure is not a connection problem
    assert impostor.connections == 1
    assert impostor.application_bytes == b""


def test_the_impostor_does_receive_the_key_when_verification_is_off(pki: Pki) -> None:
    """The control for the test above: the impostor's byte count sees a request when one is sent."""
    with Impostor(pki.impostor_cert, pki.impostor_key) as impostor:
        record = _chat_once(impostor.url, context_factory(verify=False), max_retries=0, timeout_s=0.5)
        for _ in range(100):  # bounded: the impostor's greenlet reads what the client wrote
            if API_KEY.encode() in impostor.application_bytes:
                break
            gevent.sleep(0.02)
    assert record.failure_kind is FailureKind.TIMEOUT  # it never answers
    assert f"Authorization: Bearer {API_KEY}".encode() in impostor.application_bytes


def test_a_self_signed_server_is_tls_error_with_the_reason(tmp_path: Path) -> None:
    # the server presents a CA certificate as its own: a self-signed chain of one
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "self.pem"))
    ca.private_key_pem.write_to_path(str(tmp_path / "self.key"))
    with Impostor(tmp_path / "self.pem", tmp_path / "self.key") as impostor:
        record = _chat_once(impostor.url, context_factory())
    assert record.failure_kind is FailureKind.TLS_ERROR
    assert record.failure_message == "certificate verify failed: self-signed certificate"


def test_a_certificate_for_another_name_is_tls_error(pki: Pki) -> None:
    with MockServer(MockConfig(port=0, tls_cert=str(pki.cert), tls_key=str(pki.key))) as mock:
        record = _chat_once(mock.base_url, _HostnameFactory(str(pki.ca_bundle)))
        for _ in range(100):  # bounded: the mock's greenlet needs a moment to read the client's alert
            if mock.stats["tls_handshake_failures"]:
                break
            gevent.sleep(0.02)
        stats = mock.stats
    assert record.failure_kind is FailureKind.TLS_ERROR
    assert (record.failure_message or "").startswith("certificate verify failed: Hostname mismatch")
    assert stats["requests"] == {}
    assert stats["tls_handshake_failures"] == 1


class _HostnameFactory:
    """Like the real factory, but every connection claims a host name the certificate lacks."""

    def __init__(self, ca_bundle: str) -> None:
        self._context = _Renaming(ssl.PROTOCOL_TLS_CLIENT)
        self._context.load_verify_locations(cafile=ca_bundle)

    def __call__(self, cafile: str | None = None, **_: Any) -> ssl.SSLContext:
        return self._context


class _Renaming(gevent.ssl.SSLContext):  # type: ignore[misc]
    def wrap_socket(self, sock: Any, server_hostname: str | None = None, **kw: Any) -> Any:
        return super().wrap_socket(sock, server_hostname="api.example.invalid", **kw)


def test_https_to_a_plain_http_server_is_tls_error() -> None:
    with MockServer(MockConfig(port=0)) as mock:
        record = _chat_once(mock.base_url.replace("http://", "https://"), context_factory())
        stats = mock.stats
    assert (record.failure_kind, record.failure_message) == (
        FailureKind.TLS_ERROR,
        "TLS error: wrong version number",
    )
    assert record.attempts == 1
    assert stats["requests"] == {}  # the ClientHello is answered with a 400, never taken as a request


def test_a_server_silent_after_connect_is_a_timeout_and_holds_up_no_other_handshake(pki: Pki) -> None:
    def silent(sock: Any, _address: Any) -> None:
        gevent.sleep(3)  # accepts the connection, never answers the ClientHello
        sock.close()

    black_hole = StreamServer(("127.0.0.1", 0), silent)
    black_hole.start()
    factory = context_factory(ca_bundle=str(pki.ca_bundle))
    config = MockConfig(
        port=0, ttft_ms=1, itl_ms=1, output_tokens=2, tls_cert=str(pki.cert), tls_key=str(pki.key)
    )
    try:
        with MockServer(config) as mock:
            stuck = gevent.spawn(_chat_once, f"https://127.0.0.1:{black_hole.server_port}", factory, 0, 1.0)
            gevent.sleep(0.05)  # the silent handshake is under way
            started_s = time.monotonic()
            served = _chat_once(mock.base_url, factory)
            served_after_s = time.monotonic() - started_s
            stuck_record = stuck.get(timeout=5)
    finally:
        black_hole.stop(timeout=1)
    assert served.ok, served.failure_message
    assert served_after_s < 0.9  # not queued behind the silent handshake (1 s timeout)
    assert (stuck_record.failure_kind, stuck_record.failure_message) == (FailureKind.TIMEOUT, "timed out")


def test_a_handshake_that_waits_for_its_turn_past_the_connection_timeout_times_out(pki: Pki) -> None:
    config = MockConfig(
        port=0, ttft_ms=1, itl_ms=1, output_tokens=2, tls_cert=str(pki.cert), tls_key=str(pki.key)
    )
    factory = context_factory(ca_bundle=str(pki.ca_bundle))
    release = gevent.event.Event()

    def hog() -> None:  # a step that holds the turn, as a queue of thousands of handshakes does
        with _tls._handshake_turns.turn(False):
            release.wait(5)

    with MockServer(config) as mock:
        holder = gevent.spawn(hog)
        gevent.sleep(0)
        started_s = time.monotonic()
        record = _chat_once(mock.base_url, factory, 0, 0.3)
        waited_s = time.monotonic() - started_s
        release.set()
        holder.join(timeout=5)
        served = _chat_once(mock.base_url, factory)  # the turn is free again
    assert (record.failure_kind, record.failure_message) == (FailureKind.TIMEOUT, "timed out")
    assert waited_s < 2.0, waited_s  # the connection timeout (0.3 s), not the 5 s the turn was held
    assert served.ok, served.failure_message


def test_many_concurrent_handshakes_all_verify(pki: Pki) -> None:
    config = MockConfig(
        port=0, ttft_ms=1, itl_ms=1, output_tokens=2, tls_cert=str(pki.cert), tls_key=str(pki.key)
    )
    factory = context_factory(ca_bundle=str(pki.ca_bundle))
    with MockServer(config) as mock:
        calls = [gevent.spawn(_chat_once, mock.base_url, factory) for _ in range(40)]
        records = [call.get(timeout=20) for call in calls]
        stats = mock.stats
    assert all(r.ok and r.output_tokens == 2 for r in records), {r.failure_message for r in records}
    assert stats["tls_handshake_failures"] == 0


def test_insecure_talks_to_the_impostor(pki: Pki) -> None:
    tls = {"tls_cert": str(pki.impostor_cert), "tls_key": str(pki.impostor_key)}
    config = MockConfig(port=0, ttft_ms=1, itl_ms=1, output_tokens=3, **tls)
    with MockServer(config) as mock:
        assert mock.base_url.startswith("https://127.0.0.1:")
        record = _chat_once(mock.base_url, context_factory(verify=False))
    assert record.ok, record.failure_message
    assert record.output_tokens == 3


def test_the_mock_wants_both_cert_and_key_and_fails_to_start_on_a_bad_one(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(MockConfigError) as raised:
        MockConfig(tls_cert=str(pki.cert))
    assert str(raised.value) == "--tls-key: --tls-cert and --tls-key go together"
    with pytest.raises(MockStartError) as failed:
        MockProcess(["--tls-cert", str(pki.ca_bundle), "--tls-key", str(pki.key)]).start()
    assert "cannot start" in str(failed.value) and "Traceback" not in str(failed.value)


# -- real Locust runs against the mock over HTTPS ------------------------------------------------------

LOCUSTFILE = """
import os
from locust import constant, task
from locust_aiapi import AIChatUser
from locust_aiapi._tls import context_factory

class TlsChatUser(AIChatUser):
    wait_time = constant(0.05)
    max_tokens = None
    if os.environ.get("TEST_CA_BUNDLE"):
        ssl_context_factory = context_factory(ca_bundle=os.environ["TEST_CA_BUNDLE"])

    @task
    def ask(self):
        self.chat("How long does shipping take?", name="chat")
"""


def _served(url: str, ca_bundle: Path | None = None) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else None
    with urllib.request.urlopen(url + "/mock/stats", timeout=5, context=context) as response:
        return dict(json.load(response))


MOCK_ARGS = ["--ttft-ms", "50", "--itl-ms", "5", "--output-tokens", "8", "--api-key", API_KEY]


def _keyed_run(
    tmp_path: Path, name: str, url: str, ca_bundle: Path | None
) -> tuple[Any, list[dict[str, Any]]]:
    locustfile = tmp_path / "tls_chat.py"
    locustfile.write_text(LOCUSTFILE)
    workdir = tmp_path / name
    workdir.mkdir()
    env = {"TEST_CA_BUNDLE": str(ca_bundle)} if ca_bundle else {}
    args = headless(url, 5, "4s", "--stop-timeout", "3", "--ai-api-key", API_KEY)
    run = run_locust(locustfile, workdir, args, env=env)
    return run, [r for r in run.records if r["outcome"] != "cancelled"]


def test_verified_https_gives_the_same_ttft_and_tokens_as_http(tmp_path: Path, pki: Pki) -> None:
    tls_args = ["--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    with MockProcess([*MOCK_ARGS, *tls_args]) as mock:
        https_run, https_records = _keyed_run(tmp_path, "https", mock.url, pki.ca_bundle)
        served = _served(mock.url, pki.ca_bundle)
    with MockProcess(MOCK_ARGS) as mock:
        http_run, http_records = _keyed_run(tmp_path, "http", mock.url, None)
    assert https_run.returncode == 0, https_run.stderr[-2000:]
    assert http_run.returncode == 0, http_run.stderr[-2000:]
    assert served["tls_handshake_failures"] == 0
    assert served["requests"]["/v1/chat/completions"] >= len(https_records) > 50
    for records in (https_records, http_records):
        assert all(r["outcome"] == "success" and r["output_tokens"] == 8 for r in records)
        assert min(r["ttft_ms"] for r in records) >= 50.0
    https_p50 = statistics.median(r["ttft_ms"] for r in https_records)
    http_p50 = statistics.median(r["ttft_ms"] for r in http_records)
    assert abs(https_p50 - http_p50) < 15.0, (https_p50, http_p50)  # generous: timing targets are benchmarks'


def test_a_locust_run_against_an_impostor_fails_every_request_and_never_sends_the_key(
    tmp_path: Path, pki: Pki
) -> None:
    tls_args = ["--tls-cert", str(pki.impostor_cert), "--tls-key", str(pki.impostor_key)]
    record_file = tmp_path / "served.jsonl"
    with MockProcess([*MOCK_ARGS, *tls_args, "--record", str(record_file)]) as mock:
        run, records = _keyed_run(tmp_path, "impostor", mock.url, pki.ca_bundle)
        stats = _impostor_stats(mock.url)
    assert run.returncode != 0
    assert len(records) > 10
    assert {r["failure_kind"] for r in records} == {"tls_error"}
    assert all(r["failure_message"].startswith("certificate verify failed") for r in records)
    assert "Traceback" not in run.stderr
    assert stats["requests"] == {} and stats["tls_handshake_failures"] >= len(records)
    assert not record_file.exists() or record_file.read_text() == ""


def _impostor_stats(url: str) -> dict[str, Any]:
    """The impostor's own counters, asked for by a client that does trust it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url + "/mock/stats", timeout=5, context=context) as response:
        stats = dict(json.load(response))
    stats["requests"].pop("/mock/stats", None)  # this very request
    return stats


def test_the_tls_options_on_the_command_line(tmp_path: Path, pki: Pki) -> None:
    """--ai-ca-bundle verifies with a PEM bundle, --ai-insecure says so once; bad values stop at start."""
    counting = Path(__file__).parent / "locustfiles" / "counting_chat.py"
    tls_args = ["--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    with MockProcess([*MOCK_ARGS, *tls_args]) as mock:
        runs = {}
        for name, extra in (
            ("bundle", ["--ai-ca-bundle", str(pki.ca_bundle)]),
            ("insecure", ["--ai-insecure"]),
            ("default", []),
        ):
            workdir = tmp_path / name
            workdir.mkdir()
            args = headless(mock.url, 2, "2s", "--stop-timeout", "2", "--ai-api-key", API_KEY, *extra)
            runs[name] = run_locust(counting, workdir, args)
    ok = [r for r in runs["bundle"].records if r["outcome"] == "success"]
    assert runs["bundle"].returncode == 0 and ok, runs["bundle"].stderr[-2000:]
    insecure = runs["insecure"]
    assert insecure.returncode == 0 and insecure.stderr.count("TLS certificate verification is OFF") == 1
    default = [r for r in runs["default"].records if r["outcome"] != "cancelled"]
    assert default and {r["failure_kind"] for r in default} == {"tls_error"}  # not in the system store
    for extra, message in (
        (["--ai-ca-bundle", str(tmp_path / "missing.pem")], "--ai-ca-bundle"),
        (["--ai-insecure", "--ai-ca-bundle", str(pki.ca_bundle)], "contradict"),
    ):
        args = headless("https://127.0.0.1:9", 1, "1s", *extra)
        run = run_locust(counting, tmp_path, args, with_reports=False)
        assert run.returncode == 2, run.stderr[-2000:]
        errors = [line for line in run.stderr.splitlines() if line.startswith("locust-aiapi: error:")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in run.stderr
