"""What a user asks for: one chat or embeddings request, before any byte is sent."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._records import RequestKind, RequestRecord, RequestTags

__all__ = ["ChatRequest", "EmbeddingRequest", "RequestStart", "message_list"]

perf_counter = time.perf_counter


@dataclass(slots=True)
class ChatRequest:
    name: str
    url: str
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    max_tokens: int | None = None
    temperature: float | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    intended_start_s: float | None = None  # open model: the iteration's scheduled start (perf_counter)
    tags: RequestTags = field(default_factory=RequestTags)


@dataclass(slots=True)
class EmbeddingRequest:
    name: str
    url: str
    model: str
    inputs: str | list[str]
    dimensions: int | None = None
    encoding_format: str = "float"
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    intended_start_s: float | None = None

    @property
    def count(self) -> int:
        return 1 if isinstance(self.inputs, str) else len(self.inputs)


@dataclass(frozen=True, slots=True)
class RequestStart:
    """When a request started: now, or (open model) the iteration's intended start, earlier."""

    epoch_s: float
    perf_s: float

    @classmethod
    def at(cls, intended_s: float | None) -> RequestStart:
        now_epoch, now = time.time(), perf_counter()
        if intended_s is None or intended_s > now:
            return cls(now_epoch, now)
        return cls(now_epoch - (now - intended_s), intended_s)

    def record(
        self,
        request: ChatRequest | EmbeddingRequest,
        kind: RequestKind,
        streamed: bool,
        attempt: int,
        first_e2e_ms: float | None,
    ) -> RequestRecord:
        tags = request.tags if isinstance(request, ChatRequest) else RequestTags()
        return RequestRecord(
            name=request.name,
            kind=kind,
            model=request.model,
            streamed=streamed,
            start_epoch_s=self.epoch_s,
            start_s=self.perf_s,
            attempts=attempt,
            first_attempt_e2e_ms=first_e2e_ms,
            requested_prompt_tokens=tags.requested_prompt_tokens,
            requested_output_tokens=tags.requested_output_tokens,
            conversation_id=tags.conversation_id,
            turn=tags.turn,
        )


def message_list(prompt: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A prompt string becomes one user message; a list of messages is passed on as is."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]
