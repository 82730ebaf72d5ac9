"""JSON helpers shared by dialects: every value a server sends is checked and bounded.

Nothing here recurses without a depth bound, walks an unbounded list, or trusts a number:
a server controls these bytes, so a 600-level error object or a count of ``2**63 - 1`` must
become a :class:`~locust_aiapi._errors.ProtocolError` (or a short message), never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from .._errors import ConfigurationError, ProtocolError
from .._records import Usage

__all__ = [
    "error_object_message",
    "error_message_of_body",
    "MAX_COUNT",
    "PIECES_PER_BLOCK",
    "TextPieces",
    "cached_count",
    "checked_count",
    "describe",
    "encode_json",
    "error_message_of",
    "excerpt",
    "load_json_object",
    "short_text",
    "usage_of",
]

MAX_COUNT: Final = 2**31 - 1
"""The largest token count or index accepted from a server.

No real answer comes near it, every consumer (msgpack between processes, int64 sums of many
requests, Prometheus) holds it exactly, and a larger value only ever means a broken server.
"""

_MAX_MESSAGE_DEPTH: Final = 8  # nesting levels searched for a human message in an error object
_MAX_MESSAGE_PARTS: Final = 8  # list items joined into one message (FastAPI's validation errors)
PIECES_PER_BLOCK: Final = 1024
_NAME_CHARS: Final = 200


def encode_json(body: Mapping[str, Any]) -> bytes:
    """A request body as JSON; a value that cannot be encoded is the user's configuration error.

    Copied to its own size: orjson's result keeps the 4 KiB it starts writing into, and every open
    stream holds its body (for a retry), 4 KiB per streaming user of a 100-byte body.
    """
    try:
        return bytes(memoryview(orjson.dumps(dict(body))))
    except orjson.JSONEncodeError as exc:
        raise ConfigurationError(f"the request body cannot be encoded as JSON: {exc}") from None


def load_json_object(body: bytes, what: str) -> dict[str, Any]:
    """Parse a response body that must be a JSON object, else raise :class:`ProtocolError`.

    orjson refuses nesting deeper than 1,024 levels (a ``JSONDecodeError``), so this never
    recurses out of the stack either.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    return value


def checked_count(value: object, what: str) -> int | None:
    """``value`` as a count in ``0..MAX_COUNT``; None when absent (JSON null); else ProtocolError.

    A bool is not a count (``True`` is an ``int`` in Python), nor is ``12.0``.
    """
    if value is None:
        return None
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    raise ProtocolError(f"{what} is not an integer in 0..{MAX_COUNT}")


def usage_of(value: object) -> Usage | None:
    """A :class:`Usage` from OpenAI's ``usage`` object (None when null); invalid counts raise."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError("usage is not a JSON object")
    return Usage(
        prompt_tokens=checked_count(value.get("prompt_tokens"), "usage.prompt_tokens"),
        completion_tokens=checked_count(value.get("completion_tokens"), "usage.completion_tokens"),
        total_tokens=checked_count(value.get("total_tokens"), "usage.total_tokens"),
        cached_prompt_tokens=_cached_prompt_tokens(value),
    )


def _cached_prompt_tokens(usage: dict[str, Any]) -> int | None:
    """``prompt_tokens_details.cached_tokens`` (OpenAI, vLLM), else DeepSeek's ``prompt_cache_hit_tokens``."""
    cached = cached_count(usage.get("prompt_tokens_details"), "usage.prompt_tokens_details")
    if cached is not None:
        return cached
    return checked_count(usage.get("prompt_cache_hit_tokens"), "usage.prompt_cache_hit_tokens")


def cached_count(details: object, where: str) -> int | None:
    """``details.cached_tokens`` of a ``*_tokens_details`` object (None when absent); invalid raises."""
    if details is None:
        return None
    if not isinstance(details, dict):
        raise ProtocolError(f"{where} is not a JSON object")
    return checked_count(details.get("cached_tokens"), f"{where}.cached_tokens")


def error_message_of(value: object) -> str | None:
    """The human message in a parsed error body, or None.

    Understands ``{"error": {"message": ...}}`` (OpenAI, Anthropic), ``{"error": "..."}``,
    ``{"message": ...}``, ``{"detail": ...}`` (FastAPI, including its list of validation
    errors) and the same wrapped in a one-element list (some gateways). Looks at most
    ``_MAX_MESSAGE_DEPTH`` levels deep and at ``_MAX_MESSAGE_PARTS`` list items.
    """
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict):
        return None
    for key in ("error", "message", "detail"):
        message = _text_of(value.get(key), _MAX_MESSAGE_DEPTH)
        if message:
            return message
    return None


def _text_of(value: object, depth: int) -> str | None:
    if isinstance(value, str):
        return value
    if depth <= 0:
        return None
    if isinstance(value, dict):
        return _text_of(value.get("message") or value.get("msg"), depth - 1)
    if isinstance(value, list):
        texts = [_text_of(item, depth - 1) for item in value[:_MAX_MESSAGE_PARTS]]
        return "; ".join(text for text in texts if text) or None
    return None


def short_text(value: object) -> str | None:
    """A non-empty string the server names something with (model, finish reason), cut to 200
    characters; None for anything else."""
    return value[:_NAME_CHARS] if type(value) is str and value else None


def describe(value: object, limit: int) -> str:
    """A short JSON text of ``value`` for a message; never recurses without a bound.

    orjson refuses to encode more than 254 nesting levels; that case gets a fixed text.
    """
    if isinstance(value, str):
        return excerpt(value, limit)
    try:
        return excerpt(orjson.dumps(value).decode(), limit)
    except orjson.JSONEncodeError:
        return "(a JSON value nested too deeply to show)"


def excerpt(text: str, limit: int) -> str:
    """``text`` with its whitespace collapsed, cut to at most ``limit`` characters.

    Only the first ``8 * limit`` characters are looked at, so a 200 MB message costs no more
    than a short one.
    """
    collapsed = " ".join(text[: 8 * limit].split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"


class TextPieces:
    """Text received in pieces, joined into blocks when its owner calls :meth:`compact`.

    A list of millions of one-token strings costs ~60 bytes per piece (the list slot plus a
    ``str`` object); joined blocks cost about one byte per character. ``append`` is the list's
    own method (no Python call per piece); the parser compacts every ``PIECES_PER_BLOCK`` tokens.
    """

    __slots__ = ("_blocks", "_pieces", "append")

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._pieces: list[str] = []
        self.append = self._pieces.append

    def compact(self) -> None:
        if self._pieces:
            self._blocks.append("".join(self._pieces))
            self._pieces.clear()

    def __bool__(self) -> bool:
        return bool(self._pieces or self._blocks)

    def mark(self) -> int:
        """A place in the text (pieces appended so far are joined): :meth:`since` takes what follows it."""
        self.compact()
        return len(self._blocks)

    def since(self, mark: int, until: int | None = None) -> str:
        """The text appended after ``mark`` (and before ``until``, a later mark; None: to the end)."""
        if until is None:
            return "".join(self._blocks[mark:]) + "".join(self._pieces)
        return "".join(self._blocks[mark:until])

    def __str__(self) -> str:
        return "".join(self._blocks) + "".join(self._pieces)


def error_message_of_body(body: bytes, message_chars: int = 500, excerpt_chars: int = 200) -> str:
    """The server's message in an error body: its JSON error message, else the body's start."""
    try:
        message = error_message_of(orjson.loads(body))
    except orjson.JSONDecodeError:
        message = None
    if message:
        return excerpt(message, message_chars)
    # decode only what the excerpt can show (a 200 MB body costs no more than a short one)
    head = body[: 8 * excerpt_chars].decode("utf-8", "replace")
    return excerpt(head, excerpt_chars) or "(empty body)"


def error_object_message(
    body: bytes, tag: tuple[str, str] | None = None, message_chars: int = 500, excerpt_chars: int = 200
) -> str | None:
    """The message of a JSON error object sent instead of what was asked (None: not an error object).

    An object is an error when its ``error`` is set, or when its ``tag`` field has the tag's value
    (OpenAI: ``object: "error"``, Anthropic: ``type: "error"``); some gateways wrap it in a list.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict):
        return None
    if value.get("error") is None and (tag is None or value.get(tag[0]) != tag[1]):
        return None
    return excerpt(error_message_of(value) or describe(value, excerpt_chars), message_chars)
