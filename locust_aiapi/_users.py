"""``AIChatUser`` and ``EmbeddingUser``: Locust users that speak AI APIs and measure them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from locust import FastHttpUser
from locust.event import EventHook

from ._client import AIClient
from ._conversation import Conversation
from ._limits import Limits
from ._prompts import ConversationScript, Prompt, as_script, first_prompt
from ._records import (
    ChatResult,
    EmbeddingResult,
    Outcome,
    RequestRecord,
    RequestTags,
)
from ._request_events import fire_request_events
from ._requests import ChatRequest, EmbeddingRequest, message_list
from ._retry import RetryPolicy
from ._run_state import AI_REQUEST_EVENT, attach
from ._tls import ContextFactory, context_factory
from ._tokenizer import text_token_counter
from ._transport import join_url
from ._workload import next_item
from .dialects import ChatDialect, chat_path_for, embeddings_path_for, resolve_dialect

__all__ = ["AIChatUser", "EmbeddingUser", "is_ai_user_class"]

log = logging.getLogger("locust_aiapi")
_warned_no_embeddings: dict[type, bool] = {}



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
            limits=Limits.from_options(self._ai_options),
            count_text=None if options.tokenizer == "off" else text_token_counter(options.tokenizer),
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
            url=self._url(self.embeddings_path or self._embeddings_url_path(chosen_model) or ""),
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

    def _embeddings_url_path(self, model: str) -> str | None:
        embeddings = self._ai_dialect.embeddings
        if embeddings is None:  # the client fails the call; say why once, in a line a person reads
            if not _warned_no_embeddings.get(type(self)):
                _warned_no_embeddings[type(self)] = True
                log.error(
                    "locust-aiapi: %s.embed(): the %s dialect has no embeddings API; every embed() call "
                    "fails as client_error",
                    type(self).__name__,
                    self._ai_dialect.name,
                )
            return None
        return embeddings_path_for(embeddings, model, self._api_version())

    def _report(self, record: RequestRecord) -> None:
        """One Locust request event per AI call (and a TTFT row with --ai-ttft-stats), then ai_request."""
        if record.outcome is not Outcome.CANCELLED:
            fire_request_events(self.environment, self.context(), record, self._ai_options.ttft_stats)
        self._ai_hook.fire(record=record, user=self)  # type: ignore[no-untyped-call]


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

    prompts: ClassVar[Any] = None
    """Where :meth:`next_prompt` draws from: a :class:`~locust_aiapi.PromptSource`, or a list of texts,
    Prompts or ConversationScripts (``--ai-dataset`` / ``--ai-prompt-tokens`` override it)."""

    def next_prompt(self) -> Prompt:
        """The next prompt of this class's source (``self.chat(self.next_prompt())`` sends it)."""
        return first_prompt(next_item(self))

    def next_conversation(self) -> ConversationScript:
        """The next conversation of this class's source (a single prompt is a one-turn conversation)."""
        return as_script(next_item(self))

    def conversation(
        self,
        system: str | None = None,
        *,
        think_time_s: float | None = None,
        history_budget_tokens: int | None = None,
        keep_reasoning: bool = False,
        name: str | None = None,
    ) -> Conversation:
        """A new conversation: ``conv.ask(text, **chat_kwargs)`` per turn (see :class:`Conversation`).

        Between turns the user waits ``think_time_s``, else its ``wait_time`` (an open-model user: 0).
        """
        if think_time_s is not None:
            fixed = think_time_s

            def think() -> float:
                return fixed
        elif hasattr(type(self), "arrival_rate_per_s"):  # ArrivalRateUser: wait_time waits for a start

            def think() -> float:
                return 0.0
        else:
            think = self.wait_time
        return Conversation(
            self.chat, think, system, history_budget_tokens=history_budget_tokens,
            keep_reasoning=keep_reasoning, name=name,
        )  # fmt: skip

    def chat(
        self,
        messages_or_prompt: str | Sequence[Mapping[str, Any]] | Prompt,
        *,
        name: str | None = None,
        **params: Any,
    ) -> ChatResult:
        """Send a chat completion and measure it; returns a :class:`ChatResult`, never raises.

        ``params`` override the request: ``model``, ``max_tokens``, ``temperature``, ``stream``,
        and any other body field (``tools``, ``top_p``, ``seed`` ...). A :class:`Prompt` brings its
        own ``max_tokens`` and name (``params`` and ``name`` still win) and tags the record.
        """
        tags = RequestTags()
        if isinstance(messages_or_prompt, Prompt):
            prompt = messages_or_prompt
            name = name or prompt.name
            if prompt.max_tokens is not None:
                params.setdefault("max_tokens", prompt.max_tokens)
            tags = RequestTags(
                prompt.requested_prompt_tokens, params.get("max_tokens"), prompt.conversation_id, prompt.turn
            )
            messages_or_prompt = prompt.messages
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
            tags=tags,
        )
        return self._ai_client.chat(request)


def is_ai_user_class(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, _AIUser)
