"""Fake tokens that look like what a BPE tokenizer emits, and a cheap prompt-size estimate."""

from __future__ import annotations

import random

# English word pieces carry their leading space like real BPE tokens; CJK tokens do not.
_WORDS = """
    the a of to and in is that for it with as on this be are by we can model load test latency token
    stream server request response time first each under throughput users system data result measure
    answer question simple example performance capacity queue worker
"""
_ENGLISH = (*(" " + word for word in _WORDS.split()), "ing", "ed", "ly", "er", ",", ".", " (", ")")
_CHINESE = ("的", "是", "在", "模型", "测试", "延迟", "我们", "数据", "服务", "请求", "，", "。")
# Roughly one token in eight is Chinese: enough to exercise UTF-8 handling in clients.
VOCABULARY: tuple[str, ...] = _ENGLISH * 2 + _CHINESE


def sample_tokens(rng: random.Random, count: int) -> list[str]:
    """`count` tokens drawn from the vocabulary; deterministic for a given RNG state."""
    return rng.choices(VOCABULARY, k=count)


def estimate_tokens(text_length: int) -> int:
    """The usual rule of thumb: about four characters per token, at least one token."""
    return max(1, text_length // 4)
