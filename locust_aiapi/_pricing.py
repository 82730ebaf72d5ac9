"""Estimated cost of a run: tokens × a per-model price table (US$ per million tokens).

The defaults are the providers' public list prices for the article's models, standard tier
(README "The HTML report and cost" names the pages and the date):

    GPT-4.1            $2.00 in, $0.50 cached in, $8.00 out    (OpenAI)
    Claude Sonnet 4.5  $3.00 in, $0.30 cache read, $3.75 cache write (5 minutes), $6.00 (1 hour),
                       $15.00 out (Anthropic, prompts up to 200K tokens)
    Gemini 2.5 Flash   $0.30 in, $0.03 cached in, $2.50 out    (Google, text/image/video input)
    DeepSeek V3.2      $0.28 in, $0.028 cache hit, $0.42 out   (DeepSeek; deepseek-chat/-reasoner)

The article quotes the output prices only; its figures are the last column. Cached prompt tokens (the
part of the prompt the API reports as read from its prompt cache) are priced at the cached-input price,
prompt tokens the API reports as written to its cache (Anthropic's ``cache_creation_input_tokens``) at
the cache-write price, those of them written for an hour (``cache_creation.ephemeral_1h_input_tokens``)
at the 1-hour write price, the rest of the prompt at the input price. ``--ai-pricing FILE`` (JSON) adds or
overrides models:

    {"gpt-4.1": {"input": 2.0, "output": 8.0, "cached_input": 0.5}, "my-model": 1.5}

A number prices input and output alike; without ``cached_input`` (``cache_write_input``), cached
(written) tokens cost the input price; without ``cache_write_1h_input``, 1-hour writes cost the
cache-write price.
Model names match exactly, ignoring case and a ``provider/`` prefix. Requests of a model with no price
are listed as unpriced, never guessed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._report_types import CostReport, ModelCost
from ._summary import LLMSummary

__all__ = ["DEFAULT_PRICES", "Price", "cost_report", "load_prices"]


@dataclass(frozen=True, slots=True)
class Price:
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cached_input_usd_per_mtok: float | None = None
    """None: cached prompt tokens cost the input price (no public discount known)."""
    cache_write_input_usd_per_mtok: float | None = None
    """None: prompt tokens written to the cache cost the input price (no surcharge known)."""
    cache_write_1h_input_usd_per_mtok: float | None = None
    """None: prompt tokens written to the 1-hour cache cost the cache-write price."""

    @property
    def cached_usd_per_mtok(self) -> float:
        """What a cached prompt token costs (the input price when there is no cached price)."""
        cached = self.cached_input_usd_per_mtok
        return self.input_usd_per_mtok if cached is None else cached

    @property
    def cache_write_usd_per_mtok(self) -> float:
        """What a prompt token written to the cache costs (the input price when there is no such price)."""
        written = self.cache_write_input_usd_per_mtok
        return self.input_usd_per_mtok if written is None else written

    @property
    def cache_write_1h_usd_per_mtok(self) -> float:
        """What a prompt token written to the 1-hour cache costs (else the cache-write price)."""
        written = self.cache_write_1h_input_usd_per_mtok
        return self.cache_write_usd_per_mtok if written is None else written


def _same(usd: float) -> Price:
    return Price(usd, usd)


_GPT_41 = Price(2.0, 8.0, 0.50)
_SONNET_45 = Price(3.0, 15.0, 0.30, 3.75, 6.0)  # cache reads 0.1x input, writes 1.25x (5 min) or 2x (1 h)
_GEMINI_25_FLASH = Price(0.30, 2.5, 0.03)
_DEEPSEEK_V32 = Price(0.28, 0.42, 0.028)

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4.1": _GPT_41,
    "gpt-4.1-2025-04-14": _GPT_41,
    "claude-sonnet-4.5": _SONNET_45,
    "claude-sonnet-4-5": _SONNET_45,
    "claude-sonnet-4-5-20250929": _SONNET_45,
    "gemini-2.5-flash": _GEMINI_25_FLASH,
    "deepseek-v3.2": _DEEPSEEK_V32,
    "deepseek-chat": _DEEPSEEK_V32,  # DeepSeek's API names for V3.2 (non-thinking / thinking)
    "deepseek-reasoner": _DEEPSEEK_V32,
}


def _key(model: str) -> str:
    return model.strip().lower().rsplit("/", 1)[-1]


def _usd(value: Any, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"{where}: expected a price in US$ per million tokens (a number >= 0), got {value!r}"
        )
    return float(value)


_OPTIONAL_KEYS = ("cached_input", "cache_write_input", "cache_write_1h_input")  # in Price's order
_PRICE_KEYS = frozenset({"input", "output", *_OPTIONAL_KEYS})


def _price(model: str, value: Any) -> Price:
    if isinstance(value, Mapping):
        unknown = set(value) - _PRICE_KEYS
        if unknown or not (set(value) & {"input", "output"}):
            raise ValueError(
                f'{model!r}: expected {{"input": USD, "output": USD, "cached_input": USD, '
                f'"cache_write_input": USD, "cache_write_1h_input": USD}}, got keys {sorted(value)}'
            )
        both = value.get("input", value.get("output"))
        return Price(
            _usd(value.get("input", both), f"{model!r} input"),
            _usd(value.get("output", both), f"{model!r} output"),
            *(
                None if value.get(key) is None else _usd(value[key], f"{model!r} {key}")
                for key in _OPTIONAL_KEYS
            ),
        )
    return _same(_usd(value, repr(model)))


def load_prices(path: str | None) -> dict[str, Price]:
    """The default table, updated from the JSON file at ``path``. Raises ValueError with the reason."""
    prices = dict(DEFAULT_PRICES)
    if not path:
        return prices
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except OSError as exc:
        raise ValueError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path!r}: expected a JSON object of model -> price")
    prices.update({_key(str(model)): _price(str(model), value) for model, value in data.items()})
    return prices


def cost_report(summary: LLMSummary, prices: Mapping[str, Price], source: str | None) -> CostReport:
    """Tokens and estimated US$ per model (every request that reported tokens, failed ones too)."""
    tokens: dict[str, list[int]] = {}
    for (_name, model), stats in summary.by_key.items():
        counts = tokens.setdefault(model, [0, 0, 0, 0, 0])
        counts[0] += stats.prompt_tokens
        counts[1] += stats.cached_prompt_tokens
        counts[2] += stats.cache_write_prompt_tokens
        counts[3] += stats.cache_write_1h_prompt_tokens
        counts[4] += stats.output_tokens
    models = {
        model: _model_cost(prices.get(_key(model)), *counts) for model, counts in sorted(tokens.items())
    }
    priced = [row["cost_usd"] for row in models.values() if row["cost_usd"] is not None]
    return {
        "pricing": source
        or "defaults (the providers' list prices for input, cached input, cache writes and output)",
        "models": models,
        "total_usd": sum(priced) if priced else None,
        "unpriced_models": [model for model, row in models.items() if row["cost_usd"] is None],
    }


def _model_cost(
    price: Price | None, prompt: int, cached: int, written: int, written_1h: int, output: int
) -> ModelCost:
    cost = None
    # a server cannot read or write more of the prompt than it was sent, nor break down more writes
    cached = min(cached, prompt)
    written = min(written, prompt - cached)
    written_1h = min(written_1h, written)
    if price is not None:
        cost = (
            (prompt - cached - written) * price.input_usd_per_mtok
            + cached * price.cached_usd_per_mtok
            + (written - written_1h) * price.cache_write_usd_per_mtok
            + written_1h * price.cache_write_1h_usd_per_mtok
            + output * price.output_usd_per_mtok
        ) / 1e6
    return {
        "prompt_tokens": prompt,
        "cached_prompt_tokens": cached,
        "cache_write_prompt_tokens": written,
        "cache_write_1h_prompt_tokens": written_1h,
        "output_tokens": output,
        "input_usd_per_mtok": None if price is None else price.input_usd_per_mtok,
        "cached_input_usd_per_mtok": None if price is None else price.cached_usd_per_mtok,
        "cache_write_input_usd_per_mtok": None if price is None else price.cache_write_usd_per_mtok,
        "cache_write_1h_input_usd_per_mtok": None if price is None else price.cache_write_1h_usd_per_mtok,
        "output_usd_per_mtok": None if price is None else price.output_usd_per_mtok,
        "cost_usd": cost,
    }
