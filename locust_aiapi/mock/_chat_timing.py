"""Where the chat endpoint meets the inference model: rate limits, prefill delay, decode pace.

Kept apart from :mod:`._chat` so that the request flow there stays readable; the arithmetic itself
is in :mod:`._inference` and :mod:`._ratelimits`.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from ._chat_wire import ChatRequest
from ._exchange import ServerState
from ._inference import decode_scale, prefill_s, prompt_text
from ._ratelimits import RateLimits

__all__ = ["cached_prompt_tokens", "charge_rate_limits", "decode_pace", "prefill_delay_s"]


def charge_rate_limits(state: ServerState, chat: ChatRequest) -> None:
    """Pay ``--rpm`` / ``--tpm`` for this request, or raise the 429 (an ApiError) to answer with."""
    if isinstance(state.ratelimit, RateLimits):
        state.ratelimit.admit(chat.prompt_tokens + (chat.max_tokens or state.config.output_tokens))


def cached_prompt_tokens(state: ServerState, body: bytes, chat: ChatRequest) -> int:
    """The prompt tokens the prefix cache holds (0 with ``--prompt-cache-blocks 0``); the prompt's
    blocks are cached afterwards. Reported as ``usage.prompt_tokens_details.cached_tokens``."""
    if not state.config.prompt_cache_blocks:
        return 0
    messages = orjson.loads(body).get("messages") or []  # already checked by parse_chat_request
    cached = state.prefix_cache.cached_tokens(prompt_text(messages))
    return min(cached, chat.prompt_tokens)


def prefill_delay_s(state: ServerState, chat: ChatRequest, cached_tokens: int) -> float:
    """Seconds of prefill before the first token: the prompt tokens the prefix cache does not hold."""
    return prefill_s(state.config, chat.prompt_tokens, cached_tokens)


def decode_pace(state: ServerState) -> Callable[[], float]:
    """The factor on the next inter-chunk gap, read when the gap starts (active generations now)."""
    config, capacity = state.config, state.capacity
    if not config.decode_slowdown:
        return lambda: 1.0
    return lambda: decode_scale(config, capacity.active)
