"""`POST /v1/embeddings`: deterministic unit vectors derived from a hash of each input."""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from dataclasses import dataclass
from functools import lru_cache

import orjson

from ._errors import bad_request, optional_positive_int, parse_json_object
from ._exchange import Exchange, ServerState, sleep_until
from ._faults import choose_fault, raise_error_fault
from ._tokens import estimate_tokens

DEFAULT_MODEL = "text-embedding-3-small"
MAX_INPUTS = 2048


@dataclass(frozen=True)
class EmbeddingsRequest:
    model: str
    keys: list[str]  # what each vector is derived from (the text, or the token ids)
    prompt_tokens: int
    dimensions: int
    base64: bool


def default_dimensions(model: str) -> int:
    return 3072 if "large" in model else 1536


def parse_embeddings_request(body: bytes) -> EmbeddingsRequest:
    payload = parse_json_object(body)
    model = payload.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        raise bad_request("'model' must be a string.", "model")
    keys, prompt_tokens = _parse_input(payload.get("input"))
    dimensions = optional_positive_int(payload, "dimensions") or default_dimensions(model)
    if dimensions > default_dimensions(model):
        raise bad_request(f"This model has at most {default_dimensions(model)} dimensions.", "dimensions")
    encoding_format = payload.get("encoding_format", "float")
    if encoding_format not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    return EmbeddingsRequest(model, keys, prompt_tokens, dimensions, encoding_format == "base64")


def _parse_input(value: object) -> tuple[list[str], int]:
    """Accepts a string, a list of strings, a token array, or a list of token arrays."""
    if isinstance(value, str) or _is_token_array(value):
        value = [value]
    if not isinstance(value, list) or not 0 < len(value) <= MAX_INPUTS:
        raise bad_request(
            f"'input' must be a string or a non-empty array of at most {MAX_INPUTS} items.", "input"
        )
    keys: list[str] = []
    prompt_tokens = 0
    for item in value:
        if isinstance(item, str) and item:
            keys.append("text:" + item)
            prompt_tokens += estimate_tokens(len(item))
        elif _is_token_array(item):
            keys.append("tokens:" + ",".join(map(str, item)))
            prompt_tokens += len(item)
        else:
            raise bad_request("Each 'input' item must be a non-empty string or token array.", "input")
    return keys, prompt_tokens


def _is_token_array(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(token, int) and not isinstance(token, bool) for token in value)
    )


@lru_cache(maxsize=4096)
def embedding_vector(key: str, dimensions: int) -> array[float]:
    """A unit vector of float32 values. Up to normalisation, a shorter vector is a prefix of a longer
    one for the same key, like the shortened embeddings of text-embedding-3 models."""
    raw = array("h", hashlib.shake_256(key.encode()).digest(2 * dimensions))
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    return array("f", [value / norm for value in raw])


def _encode(vector: array[float], as_base64: bool) -> object:
    if not as_base64:
        return vector.tolist()
    if sys.byteorder == "big":
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode("ascii")


def embeddings_body(request: EmbeddingsRequest) -> bytes:
    vectors = (embedding_vector(key, request.dimensions) for key in request.keys)
    data = [
        {"object": "embedding", "index": index, "embedding": _encode(vector, request.base64)}
        for index, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": request.prompt_tokens, "total_tokens": request.prompt_tokens}
    return orjson.dumps({"object": "list", "data": data, "model": request.model, "usage": usage})


def serve_embeddings(state: ServerState, exchange: Exchange) -> None:
    request = parse_embeddings_request(exchange.request.body)
    exchange.record.prompt_tokens = request.prompt_tokens
    fault = choose_fault(state.config, exchange.rng, exchange.request.headers, streaming=False)
    exchange.record.fault = None if fault is None else fault.value
    raise_error_fault(state.config, fault)
    sleep_until(exchange.request.received_s + state.config.embedding_latency_ms / 1000)
    exchange.send_json(200, embeddings_body(request))
