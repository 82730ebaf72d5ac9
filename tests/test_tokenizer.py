"""The optional tokenizer: counts received text when installed, and is simply absent otherwise."""

from __future__ import annotations

import sys

import pytest

from locust_aiapi import RequestKind, RequestRecord, TokenSource
from locust_aiapi._tokenizer import count_received_text, text_token_counter


def record(source: TokenSource | None, tokens: int | None) -> RequestRecord:
    return RequestRecord(
        name="chat", kind=RequestKind.CHAT, model="m", streamed=True, start_epoch_s=0.0, start_s=0.0,
        output_tokens=tokens, output_tokens_source=source,
    )  # fmt: skip


def test_the_o200k_encoding_counts_offline() -> None:
    counter = text_token_counter("o200k_base")
    assert counter is not None
    assert counter("Hello world") == 2
    assert counter("您好，我的订单什么时候发货？") > 3


def test_only_counted_streams_are_recounted() -> None:
    counter = text_token_counter()
    counted = record(TokenSource.COUNTED, 3)
    count_received_text(counted, "Shipping usually takes three to five business days.", counter)
    assert (counted.output_tokens_source, counted.output_tokens) == (TokenSource.TOKENIZED, 9)
    usage = record(TokenSource.USAGE, 7)
    count_received_text(usage, "whatever text", counter)
    assert (usage.output_tokens_source, usage.output_tokens) == (TokenSource.USAGE, 7)
    empty = record(TokenSource.COUNTED, 4)
    count_received_text(empty, "", counter)
    assert (empty.output_tokens_source, empty.output_tokens) == (TokenSource.COUNTED, 4)


def test_without_the_package_there_is_no_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    text_token_counter.cache_clear()
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # as if it were not installed
    try:
        assert text_token_counter() is None
        counted = record(TokenSource.COUNTED, 3)
        count_received_text(counted, "some text", None)
        assert counted.output_tokens == 3
    finally:
        text_token_counter.cache_clear()


def test_an_unknown_encoding_is_refused_and_nothing_loads_before_it_is_needed() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer encoding"):
        text_token_counter("no-such-encoding")
    text_token_counter.cache_clear()
    sys.modules.pop("bpe_openai", None)
    try:
        counter = text_token_counter("cl100k_base")
        assert counter is not None and "bpe_openai" not in sys.modules  # ~140 MB, paid only when used
        assert counter("Hello world") == 2 and "bpe_openai" in sys.modules
    finally:
        text_token_counter.cache_clear()


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_synthetic_prompts_of_n_tokens_are_n_tokens_for_the_tokenizer(encoding: str) -> None:
    """--ai-prompt-tokens N builds N one-token words: checked with the real tokenizer, not assumed."""
    import random

    from locust_aiapi._prompts import synthetic_text

    counter = text_token_counter(encoding)
    assert counter is not None
    for tokens in (1, 7, 128, 512, 3000):
        assert counter(synthetic_text(random.Random(tokens), tokens)) == tokens
