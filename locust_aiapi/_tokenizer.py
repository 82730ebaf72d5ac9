"""Counting the tokens of received text, when a tokenizer is installed (the ``tokenizer`` extra).

A server that sends no ``usage`` leaves two estimates: one token per token delta of the stream (always
available, exact for servers that send one token per chunk) and the tokens of the text received, which
stays right when a delta carries several tokens. The second needs a tokenizer that works offline:
``bpe-openai`` ships OpenAI's encodings inside the package (``pip install 'locust-aiapi[tokenizer]'``).
Other models' tokenizers differ by a few per cent; the record says which method counted.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable

from ._records import RequestRecord, TokenSource

__all__ = ["DEFAULT_ENCODING", "count_received_text", "text_token_counter"]

DEFAULT_ENCODING = "o200k_base"
"""GPT-4o / GPT-4.1's encoding: the closest of OpenAI's to today's chat models."""

log = logging.getLogger("locust_aiapi")


@functools.lru_cache(maxsize=8)
def text_token_counter(encoding: str = DEFAULT_ENCODING) -> Callable[[str], int] | None:
    """A function counting the tokens of a text, or None when no tokenizer is installed (or it fails)."""
    try:
        with warnings.catch_warnings():  # bpe-openai 0.1 loads its data with a deprecated importlib call
            warnings.simplefilter("ignore", DeprecationWarning)
            import bpe_openai  # type: ignore[import-untyped,import-not-found,unused-ignore]

            encoder = bpe_openai.get_encoding(encoding)
    except ImportError:
        return None
    except Exception as exc:  # an unknown encoding name: counted by deltas instead
        log.warning("locust-aiapi: tokenizer %r is not available (%s); counting token deltas", encoding, exc)
        return None

    def count(text: str) -> int:
        return len(encoder.encode(text))

    return count


def count_received_text(record: RequestRecord, text: str, counter: Callable[[str], int] | None) -> None:
    """A stream without usage whose deltas were counted: count the text received instead, if we can."""
    if counter is None or record.output_tokens_source is not TokenSource.COUNTED or not text:
        return
    tokens = counter(text)
    if tokens > 0:
        record.output_tokens = tokens
        record.output_tokens_source = TokenSource.TOKENIZED
