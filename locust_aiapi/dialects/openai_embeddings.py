"""The OpenAI embeddings request and response (also spoken by vLLM, TEI, Ollama, Azure, ...)."""

from __future__ import annotations

import base64
import binascii
import math
import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._errors import InvalidResponseError, ProtocolError
from ._json import encode_json, load_json_object, short_text, usage_of
from .base import EmbeddingsResponse

__all__ = ["OPENAI_EMBEDDINGS", "OpenAIEmbeddingsDialect"]

_NUMBER_TYPES: Final = frozenset({float, int})


@dataclass(frozen=True, slots=True)
class OpenAIEmbeddingsDialect:
    """OpenAI's ``/v1/embeddings`` format (an ``EmbeddingsDialect``)."""

    path: str = "/v1/embeddings"

    def build_request(
        self,
        *,
        model: str,
        input: str | list[str],
        dimensions: int | None,
        encoding_format: str,
        extra_body: Mapping[str, Any],
    ) -> bytes:
        body: dict[str, Any] = {"model": model, "input": input, "encoding_format": encoding_format}
        if dimensions is not None:
            body["dimensions"] = dimensions
        body.update(extra_body)
        return encode_json(body)

    def parse_response(
        self, body: bytes, *, expected_count: int, encoding_format: str, expected_dimensions: int | None
    ) -> EmbeddingsResponse:
        """Vectors in input order, the usage and the served model.

        Float lists are accepted even when base64 was requested (some servers ignore the option);
        a base64 string is only accepted when it was requested, as it could not be decoded otherwise.
        """
        response = load_json_object(body, "embeddings response")
        items = response.get("data")
        if not isinstance(items, list):
            raise ProtocolError("embeddings response has no data list")
        if len(items) != expected_count:
            raise InvalidResponseError(f"expected {expected_count} embeddings, got {len(items)}")
        base64_allowed = encoding_format == "base64"
        vectors = [_embedding_vector(item, base64_allowed) for item in _in_index_order(items)]
        _check_numbers(vectors)
        _check_dimensions(vectors, expected_dimensions)
        return EmbeddingsResponse(vectors, usage_of(response.get("usage")), short_text(response.get("model")))


OPENAI_EMBEDDINGS: Final = OpenAIEmbeddingsDialect()


def _in_index_order(items: list[Any]) -> list[dict[str, Any]]:
    """The items sorted by ``index`` (an item without one keeps its position)."""
    if not all(isinstance(item, dict) for item in items):
        raise ProtocolError("embeddings data holds a non-object item")
    indexes = [item.get("index", position) for position, item in enumerate(items)]
    if not all(type(index) is int for index in indexes) or sorted(indexes) != list(range(len(items))):
        raise InvalidResponseError("embedding indexes are not a permutation of 0..n-1")
    by_index = dict(zip(indexes, items, strict=True))
    return [by_index[index] for index in range(len(items))]


def _embedding_vector(item: dict[str, Any], base64_allowed: bool) -> list[float]:
    embedding = item.get("embedding")
    if isinstance(embedding, list):
        return embedding
    if base64_allowed and isinstance(embedding, str):
        return _decode_float32(embedding)
    expected = "a list of floats or a base64 string" if base64_allowed else "a list of floats"
    raise ProtocolError(f"embedding is not {expected}")


def _decode_float32(text: str) -> list[float]:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("embedding is not valid base64") from None
    if len(raw) % 4:
        raise ProtocolError("base64 embedding is not a whole number of float32 values")
    values = array("f", raw)
    if sys.byteorder == "big":  # the wire format is little-endian
        values.byteswap()
    return values.tolist()


def _check_numbers(vectors: list[list[float]]) -> None:
    """Each vector is a flat list of finite numbers (llama.cpp can send a per-token matrix).

    Checked with C-level loops (``map``): ~10 ns per value, 3 ms for 100 vectors of 3,072.
    """
    for position, vector in enumerate(vectors):
        if not _NUMBER_TYPES.issuperset(map(type, vector)):
            raise InvalidResponseError(
                f"embedding {position} is not a flat list of numbers (nested lists, strings, bools or null)"
            )
        # JSON cannot spell NaN or inf (orjson rejects 1e400), but base64 float32 can
        if not all(map(math.isfinite, vector)):
            raise InvalidResponseError(f"embedding {position} holds a number that is not finite")


def _check_dimensions(vectors: list[list[float]], expected_dimensions: int | None) -> None:
    dimensions = sorted({len(vector) for vector in vectors})
    if len(dimensions) > 1:
        raise InvalidResponseError(f"embeddings have different dimensions: {dimensions}")
    if dimensions == [0]:
        raise InvalidResponseError("embeddings are empty")
    if expected_dimensions is not None and dimensions and dimensions[0] != expected_dimensions:
        raise InvalidResponseError(f"expected {expected_dimensions} dimensions, got {dimensions[0]}")
