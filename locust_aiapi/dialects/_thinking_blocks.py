"""Anthropic's thinking blocks, kept as they came so that a conversation can send them back.

With thinking on, the Messages API takes tool results only when the assistant message that made the
calls comes back opening with its thinking, each block unchanged and in its place: a ``thinking``
block with the ``signature`` the API gave it (streamed in a ``signature_delta``; as in the official
SDK, the last one sent is the signature), or a ``redacted_thinking`` block with its opaque ``data``.
A block's text is what its ``thinking_delta`` events carried, the same text the answer's reasoning
holds, so it is kept once: a block remembers its span of the reasoning, and its text is joined when
asked for. A block without a signature is not kept (the API signs every one, and takes none back
unsigned). Each block remembers how many of the answer's tool calls came before it, so that thinking
interleaved between calls goes back between them.

Bounded: ``MAX_THINKING_BLOCKS`` per answer, and ``MAX_THINKING_DATA_CHARS`` of signatures and
redacted data together (a signature holds the whole thinking encrypted: it grows with it); beyond
either, or a field of the wrong type, is a protocol error.
"""

from __future__ import annotations

from typing import Any, Final

from .._errors import ProtocolError
from .._records import ThinkingBlock
from ._json import TextPieces

__all__ = [
    "MAX_THINKING_BLOCKS",
    "MAX_THINKING_DATA_CHARS",
    "THINKING_KINDS",
    "StreamedThinking",
    "ThinkingData",
    "thinking_block",
]

MAX_THINKING_BLOCKS: Final = 128
"""Thinking blocks per answer (thinking and redacted)."""
MAX_THINKING_DATA_CHARS: Final = 16 << 20
"""Characters of signatures and redacted data kept per answer."""
THINKING_KINDS: Final = ("thinking", "redacted_thinking")


class ThinkingData:
    """The count of an answer's thinking blocks and of their signatures' and data's characters."""

    __slots__ = ("blocks", "chars")

    def __init__(self) -> None:
        self.blocks = 0
        self.chars = 0

    def add_block(self) -> None:
        if self.blocks >= MAX_THINKING_BLOCKS:
            raise ProtocolError(f"the answer has more than {MAX_THINKING_BLOCKS} thinking blocks")
        self.blocks += 1

    def add_chars(self, chars: int) -> None:
        self.chars += chars
        if self.chars > MAX_THINKING_DATA_CHARS:
            limit = MAX_THINKING_DATA_CHARS
            raise ProtocolError(f"the answer's thinking signatures and data pass {limit} characters")


def thinking_block(block: dict[str, Any], after_calls: int, data: ThinkingData) -> ThinkingBlock | None:
    """A whole thinking or redacted_thinking block of a non-streamed answer, as kept (None: unsigned)."""
    data.add_block()
    if block["type"] == "redacted_thinking":
        redacted = _text(block, "data", "a redacted_thinking block's data")
        data.add_chars(len(redacted))
        return ThinkingBlock("", "", redacted, after_calls)
    thinking = _text(block, "thinking", "a thinking block's thinking")
    signature = _text(block, "signature", "a thinking block's signature")
    data.add_chars(len(signature))
    return ThinkingBlock(thinking, signature, None, after_calls) if signature else None


def _text(block: dict[str, Any], field: str, what: str) -> str:
    value = block.get(field, "")
    if type(value) is not str:
        raise ProtocolError(f"{what} is not a string")
    return value


class StreamedThinking:
    """The thinking blocks of a streamed answer, as their events arrive."""

    __slots__ = ("_blocks", "_data", "open")

    def __init__(self) -> None:
        self._blocks: list[_Span | ThinkingBlock] = []  # in order; a streamed block as its span
        self._data = ThinkingData()
        self.open: _Span | None = None  # the thinking block being streamed

    def start(self, block: dict[str, Any], reasoning: TextPieces, after_calls: int) -> None:
        """A ``content_block_start`` of a thinking or redacted_thinking block (the open one has ended)."""
        if block["type"] == "redacted_thinking":
            kept = thinking_block(block, after_calls, self._data)
            assert kept is not None  # a redacted block is always kept
            self._blocks.append(kept)
            return
        self._data.add_block()
        text = _text(block, "thinking", "a thinking block's thinking")
        self.open = _Span(text, reasoning.mark(), after_calls)
        self.sign(block.get("signature", ""))

    def sign(self, signature: object) -> None:
        """A ``signature_delta``: the open block's signature (none open: nothing to sign)."""
        span = self.open
        if span is None:
            return
        if type(signature) is not str:
            raise ProtocolError("a thinking block's signature is not a string")
        self._data.add_chars(len(signature))
        span.signature = signature

    def end(self, reasoning: TextPieces) -> None:
        """The open block is over (its stop, or the next block's start)."""
        span = self.open
        if span is not None:
            span.until = reasoning.mark()
            self._blocks.append(span)
            self.open = None

    def blocks(self, reasoning: TextPieces) -> tuple[ThinkingBlock, ...]:
        """Every signed block so far, in order; one the stream left open as far as it came."""
        spans = self._blocks if self.open is None else [*self._blocks, self.open]
        kept = (span if isinstance(span, ThinkingBlock) else span.block(reasoning) for span in spans)
        return tuple(block for block in kept if block.signature or block.redacted_data is not None)


class _Span:
    """A streamed thinking block: the text its start carried, then its span of the reasoning."""

    __slots__ = ("after_calls", "mark", "signature", "start_text", "until")

    def __init__(self, start_text: str, mark: int, after_calls: int) -> None:
        self.start_text = start_text  # none in what the API sends
        self.mark = mark
        self.until: int | None = None  # None: open, to the end of the reasoning
        self.after_calls = after_calls
        self.signature = ""

    def block(self, reasoning: TextPieces) -> ThinkingBlock:
        text = self.start_text + reasoning.since(self.mark, self.until)
        return ThinkingBlock(text, self.signature, None, self.after_calls)
