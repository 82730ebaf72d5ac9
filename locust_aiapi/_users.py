"""``AIChatUser`` and ``EmbeddingUser``: Locust users that speak AI APIs and measure them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from locust import FastHttpUser
from locust.event import EventHook

from ._client import AIClient
from ._errors import AIRequestFailure, ConfigurationError
from ._metrics import e2e_ms, ttft_ms
from ._records import ChatResult, EmbeddingResult, FailureKind, Outcome, RequestKind, RequestRecord
from ._requests import ChatRequest, EmbeddingRequest, message_list
from ._retry import RetryPolicy
from ._run_state import AI_REQUEST_EVENT, attach
from ._tls import ContextFactory, context_factory
from ._transport import join_url
from .dialects import ChatDialect, EmbeddingsDialect, chat_path_for, embeddings_path_for, resolve_dialect

__all__ = ["AIChatUser", "EmbeddingUser", "is_ai_user_class"]

_REQUEST_TYPES = {RequestKind.CHAT: "CHAT", RequestKind.EMBEDDINGS: "EMBED"}
TTFT_REQUEST_TYPE = "TTFT"


class _AIUser(FastHttpUser):
    """Shared plumbing: API key, headers, retries and reporting. Also does embeddings."""

    abstract = True

    dialect: ClassVar[str | ChatDialect | type] = "openai"
    """API dialect: a name from :data:`locust_aiapi.dialects.DIALECTS`, a dialect instance or class
    (``--ai-dialect`` overrides it). The dialect owns the wire format: default paths, auth headers,
    request bodies, stream and error parsing, embeddings format."""

    api_version: str | None = None
    """API version for dialects that put one in their URL (``azure-openai``: the ``api-version`` query
    parameter); ``--ai-api-version`` overrides it; None: the dialect's default."""

    api_key: str | None = None
    """API key; ``--ai-api-key`` / ``OPENAI_API_KEY`` take precedence. Sent as the dialect says
    (OpenAI: ``Authorization: Bearer ...``)."""

    extra_headers: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Headers added to every AI request (e.g. ``{"api-key": ...}`` for Azure, org/project ids)."""

    extra_body: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    """Fields merged into every request body, after ours (so they can override anything)."""

    embedding_model: str = "text-embedding-3-small"
    """Model for :meth:`embed` (``--ai-embedding-model`` overrides it)."""

    embeddings_path: str | None = None
    """Path of the embeddings endpoint, joined to ``host`` (a host ending in ``/v1`` is fine);
    None: the dialect's own (OpenAI: ``/v1/embeddings``)."""

    network_timeout: float = 300.0
    """Seconds a single read may wait (a long non-streamed generation must fit)."""

    connection_timeout: float = 30.0

    insecure: bool = False
    """False, unlike FastHttpUser: whether TLS is verified is ``ssl_context_factory``'s to decide."""

    ssl_context_factory: ContextFactory = context_factory(verify=True, ca_bundle=None)
    """One TLS context per process, shared by every user, certificates verified with the system CA store.
    ``context_factory(ca_bundle=PATH)`` trusts a PEM bundle instead, ``context_factory(verify=False)``
    nobody (``--ai-ca-bundle`` / ``--ai-insecure`` set this)."""

    def __init__(self, environment: Any) -> None:
        options = self._ai_options = attach(environment).options
        if options.insecure or options.ca_bundle:  # FastHttpUser reads it in its __init__
            self.ssl_context_factory = context_factory(not options.insecure, options.ca_bundle)
        super().__init__(environment)
        self._ai_hook: EventHook = getattr(environment.events, AI_REQUEST_EVENT)
        self._ai_dialect = resolve_dialect(self._ai_options.dialect or self.dialect)
        self._ai_client = AIClient(
            pool=self.client.client.clientpool,
            headers=self._ai_headers(),
            dialect=self._ai_dialect,
            retry=RetryPolicy(
                self._ai_options.max_retries,
                self._ai_options.retry_base_delay_s,
                self._ai_options.retry_max_delay_s,
            ),
            report=self._report,
        )

    def _ai_headers(self) -> dict[str, str]:
        headers = {"User-Agent": "locust-aiapi"}
        key = self._ai_options.api_key or self.api_key
        if key:
            headers.update(self._ai_dialect.auth_headers(key))
        headers.update(self.extra_headers)
        return headers

    def _intended_start_s(self) -> float | None:
        """When the request was meant to start (None: now). The open model overrides it."""
        return None

    def _url(self, path: str) -> str:
        return join_url(self.host or "", path)

    def embed(
        self,
        input: str | Sequence[str],
        *,
        name: str | None = None,
        dimensions: int | None = None,
        encoding_format: str = "float",
        model: str | None = None,
        **params: Any,
    ) -> EmbeddingResult:
        """Embed one text or a batch (a list is one request); the response is checked.

        Returns an :class:`EmbeddingResult`; a failure is reported to Locust, never raised.
        """
        chosen_model = model or self._ai_options.embedding_model or self.embedding_model
        request = EmbeddingRequest(
            name=name or "embeddings",
            url=self._url(self.embeddings_path or self._embeddings_url_path(chosen_model)),
            model=chosen_model,
            inputs=input if isinstance(input, str) else list(input),
            dimensions=dimensions,
            encoding_format=encoding_format,
            extra_body={**self.extra_body, **params},
            intended_start_s=self._intended_start_s(),
        )
        return self._ai_client.embed(request)

    def _api_version(self) -> str | None:
        return self._ai_options.api_version or self.api_version

    def _embeddings_url_path(self, model: str) -> str:
        return embeddings_path_for(self._embeddings_dialect(), model, self._api_version())

    def _embeddings_dialect(self) -> EmbeddingsDialect:
        embeddings = self._ai_dialect.embeddings
        if embeddings is None:
            raise ConfigurationError(
                f"{type(self).__name__}.embed(): the {self._ai_dialect.name} dialect has no embeddings API"
            )
        return embeddings

    def _report(self, record: RequestRecord) -> None:
        """One Locust request event per AI call (plus a TTFT row), then our ``ai_request`` hook."""
        if record.outcome is not Outcome.CANCELLED:
            self._fire_locust_events(record)
        self._ai_hook.fire(record=record, user=self)  # type: ignore[no-untyped-call]

    def _fire_locust_events(self, record: RequestRecord) -> None:
        exception = None
        if not record.ok:
            exception = AIRequestFailure(
                record.failure_kind or FailureKind.PROTOCOL_ERROR, record.failure_message or ""
            )
        request_event = self.environment.events.request
        request_event.fire(
            request_type=_REQUEST_TYPES[record.kind],
            name=record.name,
            response_time=e2e_ms(record),
            response_length=_response_length(record),
            exception=exception,
            context=self.context(),
            response=None,
            start_time=record.start_epoch_s,
            url=None,
        )
        first_token_ms = ttft_ms(record)
        if record.ok and first_token_ms is not None and self._ai_options.ttft_stats:
            request_event.fire(
                request_type=TTFT_REQUEST_TYPE,
                name=record.name,
                response_time=first_token_ms,
                response_length=0,
                exception=None,
                context=self.context(),
                response=None,
                start_time=record.start_epoch_s,
                url=None,
            )


def _response_length(record: RequestRecord) -> int:
    tokens = record.output_tokens if record.kind is RequestKind.CHAT else record.prompt_tokens
    return tokens or 0


class EmbeddingUser(_AIUser):
    """Base class for users that call an embeddings endpoint: ``self.embed(texts)``."""

    abstract = True


class AIChatUser(_AIUser):
    """Base class for users that chat with an LLM: ``self.chat(prompt)``; ``self.embed()`` works too.

    Class attributes configure the defaults of every :meth:`chat` call.
    """

    abstract = True

    model: str = "gpt-4.1"
    """Chat model (``--ai-model`` / ``AI_MODEL`` override it)."""

    max_tokens: int | None = 500
    """``max_tokens`` sent with each request (None: not sent)."""

    temperature: float | None = 0.7
    """``temperature`` sent with each request (None: not sent)."""

    stream: bool = True
    """Stream the answer (SSE): needed for TTFT and inter-token latency."""

    chat_path: str | None = None
    """Path of the chat endpoint, joined to ``host`` (a host ending in ``/v1`` is fine);
    None: the dialect's own (OpenAI: ``/v1/chat/completions``)."""

    def chat(
        self,
        messages_or_prompt: str | Sequence[Mapping[str, Any]],
        *,
        name: str | None = None,
        **params: Any,
    ) -> ChatResult:
        """Send a chat completion and measure it; returns a :class:`ChatResult`, never raises.

        ``params`` override the request: ``model``, ``max_tokens``, ``temperature``, ``stream``,
        and any other body field (``tools``, ``top_p``, ``seed`` ...).
        """
        model = params.pop("model", None) or self._ai_options.model or self.model
        request = ChatRequest(
            name=name or "chat",
            url=self._url(self.chat_path or chat_path_for(self._ai_dialect, model, self._api_version())),
            model=model,
            messages=message_list(messages_or_prompt),
            stream=bool(params.pop("stream", self.stream)),
            max_tokens=params.pop("max_tokens", self.max_tokens),
            temperature=params.pop("temperature", self.temperature),
            extra_body={**self.extra_body, **params},
            intended_start_s=self._intended_start_s(),
        )
        return self._ai_client.chat(request)


def is_ai_user_class(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, _AIUser)
