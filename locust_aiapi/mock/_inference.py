"""The mock's inference-server timing model: prefill, prompt-cache hits and decode slowdown.

- **Prefill.** Time to first token = queueing (waiting for a generation slot, :mod:`._capacity`)
  + ``--ttft-ms`` (fixed overhead) + uncached prompt tokens / ``--prefill-tokens-per-s``.
- **Prompt cache.** Like vLLM's automatic prefix caching, the prompt is cut into blocks of
  :data:`BLOCK_CHARS` characters (about :data:`BLOCK_TOKENS` tokens at four characters a token), each
  hashed together with the blocks before it; the leading blocks already seen are not prefilled
  again. The cache keeps the ``--prompt-cache-blocks`` most recently used blocks (0: no cache).
- **Decode slowdown.** Each gap between content chunks is ``--itl-ms`` × (1 + ``--decode-slowdown`` ×
  (active generations − 1)), with the active count taken when the gap starts and capped at
  ``--decode-capacity`` (0: uncapped), so inter-token latency grows with the number of concurrent
  streams the way a batch-decoding server's does.

Pure arithmetic and a bounded LRU: no sockets, no sleeping; :mod:`._chat` applies it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from ._config import MockConfig

__all__ = ["BLOCK_CHARS", "BLOCK_TOKENS", "PrefixCache", "decode_scale", "prefill_s", "prompt_text"]

BLOCK_TOKENS = 16
BLOCK_CHARS = BLOCK_TOKENS * 4


class PrefixCache:
    """Hashes of prompt blocks seen recently, least recently used dropped beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._blocks: OrderedDict[bytes, None] = OrderedDict()

    def cached_tokens(self, text: str) -> int:
        """Tokens of ``text``'s leading blocks already cached; every block of it is cached afterwards."""
        if self.capacity == 0:
            return 0
        digest = hashlib.blake2b(digest_size=16)
        hits, missed = 0, False
        for start in range(0, len(text) - len(text) % BLOCK_CHARS, BLOCK_CHARS):  # whole blocks only
            digest.update(text[start : start + BLOCK_CHARS].encode())
            key = digest.copy().digest()
            if not missed and key in self._blocks:
                hits += 1
                self._blocks.move_to_end(key)
                continue
            missed = True
            self._blocks[key] = None
            if len(self._blocks) > self.capacity:
                self._blocks.popitem(last=False)
        return hits * BLOCK_TOKENS


def prompt_text(messages: Sequence[object]) -> str:
    """The text a prompt cache keys on: each message's role and text content, in order."""
    parts = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"<{message.get('role')}>{content if isinstance(content, str) else ''}")
    return "".join(parts)


def prefill_s(config: MockConfig, prompt_tokens: int, cached_tokens: int) -> float:
    """Seconds to prefill the uncached part of the prompt (0 without ``--prefill-tokens-per-s``)."""
    if not config.prefill_tokens_per_s:
        return 0.0
    return max(0, prompt_tokens - cached_tokens) / config.prefill_tokens_per_s


def decode_scale(config: MockConfig, active: int) -> float:
    """How much longer each inter-chunk gap is with ``active`` generations running."""
    if config.decode_capacity:
        active = min(active, config.decode_capacity)
    return 1.0 + config.decode_slowdown * max(0, active - 1)
