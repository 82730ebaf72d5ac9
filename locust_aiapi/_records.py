"""Per-request records: raw monotonic timestamps and token counts, nothing derived.

Every AI call a user makes produces exactly one :class:`RequestRecord`. Metrics such as
``ttft_ms`` are derived from it by the pure functions in :mod:`locust_aiapi._metrics`.
All ``*_s`` timestamps are :func:`time.perf_counter` readings (CLOCK_MONOTONIC on Linux,
shared by every process on the machine); ``start_epoch_s`` is the one wall-clock reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Outcome(str, Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    # The test stopped while the request was in flight (Locust kills users at the end of a
    # run unless --stop-timeout lets them finish). Recorded, but neither success nor failure.
    CANCELLED = "cancelled"


class FailureKind(str, Enum):
    """Why a request failed. The value is what reports and JSONL show."""

    RATE_LIMITED = "rate_limited"  # HTTP 429
    CLIENT_ERROR = "client_error"  # other HTTP 4xx
    SERVER_ERROR = "server_error"  # HTTP 5xx
    OVERLOADED = "overloaded"  # HTTP 529 or an in-stream overloaded_error (Anthropic sheds load)
    STREAM_ERROR = "stream_error"  # ``data: {"error": ...}`` inside an HTTP 200 stream
    TRUNCATED = "truncated"  # stream ended without [DONE] or finish_reason
    PROTOCOL_ERROR = "protocol_error"  # invalid JSON, invalid SSE, unexpected body
    EMPTY_RESPONSE = "empty_response"  # a well-formed answer with no output at all
    INVALID_RESPONSE = "invalid_response"  # e.g. embeddings: wrong vector count or dimensions
    CONNECTION_ERROR = "connection_error"  # refused, reset, closed early
    TIMEOUT = "timeout"  # connect or read timeout
    RESPONSE_TOO_LARGE = "response_too_large"  # a line, event or body beyond its bound
    TLS_ERROR = "tls_error"  # TLS handshake failed: certificate not trusted, wrong host, not TLS


class TokenSource(str, Enum):
    USAGE = "usage"  # the server's ``usage`` object
    # No usage was sent: one token per token delta of the dialect (for OpenAI a content,
    # reasoning or tool-call delta after the role chunk, empty text included).
    COUNTED = "counted"
    # No usage was sent, and the received text (content and reasoning) was counted with the tokenizer
    # of the ``tokenizer`` extra (OpenAI's o200k_base): exact for OpenAI models, close for others.
    TOKENIZED = "tokenized"


class StampSource(str, Enum):
    """Where a stream's chunk times came from (see :mod:`locust_aiapi._rx_stamps`)."""

    KERNEL = "kernel"  # every read of the body carried the kernel's receive stamp
    USER = "user"  # at least one read was stamped in user space, when our greenlet read it


class RequestKind(str, Enum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"


@dataclass(slots=True)
class RequestRecord:
    """Everything measured about one AI request (after retries, if any)."""

    name: str
    kind: RequestKind
    model: str  # the model asked for
    streamed: bool
    start_epoch_s: float
    start_s: float
    end_s: float = 0.0
    headers_s: float | None = None
    first_token_s: float | None = None
    first_content_s: float | None = None
    last_token_s: float | None = None
    # arrival time of every chunk that carried at least one token, in order
    # (at most a cap of them: beyond it ``chunk_times_capped`` is set, while ``last_token_s`` and
    # the token count still cover every chunk, so ITL and TPOT stay exact)
    token_chunk_times_s: list[float] = field(default_factory=list)
    chunk_times_capped: bool = False
    timestamps: StampSource = StampSource.USER
    # client lag of each kernel-stamped read of the body (our stamp minus the kernel's), same cap as above
    client_lags_s: list[float] = field(default_factory=list)
    # token events that arrived in a read together with another token event (each has that read's
    # stamp: an upper bound), and whether the first token was one of them
    shared_read_token_events: int = 0
    first_token_shared_read: bool = False
    output_tokens: int | None = None
    output_tokens_source: TokenSource | None = None
    prompt_tokens: int | None = None
    # of ``prompt_tokens``, those the server read from its prompt cache (None: it did not say)
    cached_prompt_tokens: int | None = None
    # of ``prompt_tokens``, those the server wrote to its prompt cache (billed above the input price)
    cache_write_prompt_tokens: int | None = None
    # of those writes, the ones to the 1-hour cache (Anthropic bills them higher than the 5-minute ones)
    cache_write_1h_prompt_tokens: int | None = None
    outcome: Outcome = Outcome.SUCCESS
    failure_kind: FailureKind | None = None
    failure_message: str | None = None
    status_code: int | None = None
    request_id: str | None = None
    retry_after_s: float | None = None
    finish_reason: str | None = None
    served_model: str | None = None  # the ``model`` the server says answered
    attempts: int = 1
    # E2E of the first attempt when retries happened (None when there was one attempt)
    first_attempt_e2e_ms: float | None = None
    # what the workload asked for (None: not set by a prompt source), next to what the server reported
    requested_prompt_tokens: int | None = None
    requested_output_tokens: int | None = None
    conversation_id: str | None = None
    turn: int | None = None  # 1, 2, 3 ... within the conversation

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    def fail(self, kind: FailureKind, message: str) -> None:
        self.outcome = Outcome.FAILURE
        self.failure_kind = kind
        self.failure_message = message


@dataclass(slots=True, frozen=True)
class RequestTags:
    """What a request's record carries about the workload that produced it (copied onto each attempt)."""

    requested_prompt_tokens: int | None = None
    requested_output_tokens: int | None = None
    conversation_id: str | None = None
    turn: int | None = None


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    """Of ``prompt_tokens``, those read from the provider's prompt cache (billed at a discount);
    None when the API did not report it. OpenAI: ``prompt_tokens_details.cached_tokens``;
    Anthropic: ``cache_read_input_tokens``; Responses: ``input_tokens_details.cached_tokens``."""
    cache_write_prompt_tokens: int | None = None
    """Of ``prompt_tokens``, those written to the prompt cache (Anthropic's ``cache_creation_input_tokens``,
    billed above the input price); None when the API did not report it (OpenAI and others do not bill
    writes)."""
    cache_write_1h_prompt_tokens: int | None = None
    """Of ``cache_write_prompt_tokens``, those written to the 1-hour cache (Anthropic's
    ``cache_creation.ephemeral_1h_input_tokens``, billed 2x input against 1.25x for 5 minutes); None
    when the API did not break the writes down."""


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A function call the model asked for, as the answer carried it (arguments: the JSON text)."""

    id: str
    name: str
    arguments: str

    def to_message(self) -> dict[str, object]:
        """The call in OpenAI's format, as an entry of an assistant message's ``tool_calls``."""
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass(slots=True, frozen=True)
class ThinkingBlock:
    """A thinking block of an Anthropic answer, kept as it came: the API takes thinking back only with
    its signature, and only unchanged (a ``redacted_thinking`` block: its opaque ``data`` instead)."""

    thinking: str
    signature: str
    redacted_data: str | None = None
    """A ``redacted_thinking`` block's ``data`` (then ``thinking`` and ``signature`` are empty)."""
    after_calls: int = 0
    """How many of the answer's tool calls came before it (0: before any; interleaved thinking comes
    between calls, and goes back there)."""

    def to_block(self) -> dict[str, object]:
        """The block as the Messages API takes it back in an assistant message's content."""
        if self.redacted_data is not None:
            return {"type": "redacted_thinking", "data": self.redacted_data}
        return {"type": "thinking", "thinking": self.thinking, "signature": self.signature}


@dataclass(slots=True)
class ChatResult:
    """What ``AIChatUser.chat()`` returns: the answer and its measurements."""

    text: str
    reasoning: str
    usage: Usage | None
    record: RequestRecord
    tool_calls: tuple[ToolCall, ...] = ()
    """The tool calls of the answer, where the dialect keeps them (all but legacy completions)."""
    thinking_blocks: tuple[ThinkingBlock, ...] = ()
    """The signed thinking blocks of the answer (Anthropic): a conversation sends those of an answer
    with tool calls back with them, as the API requires when thinking is on."""

    @property
    def ok(self) -> bool:
        return self.record.ok


@dataclass(slots=True)
class EmbeddingResult:
    """What ``EmbeddingUser.embed()`` returns: one vector per input (empty on failure)."""

    vectors: list[list[float]]
    usage: Usage | None
    record: RequestRecord

    @property
    def ok(self) -> bool:
        return self.record.ok

    @property
    def dimensions(self) -> int | None:
        return len(self.vectors[0]) if self.vectors else None
