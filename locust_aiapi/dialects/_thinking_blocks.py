"""Anthropic's thinking blocks, kept as they came so that a conversation can send them back.

With thinking on, the Messages API takes tool results only when the assistant message that made the
calls comes back opening with its thinking, each block unchanged: a ``thinking`` block with the
``signature`` the API gave it (streamed in ``signature_delta`` events), or a ``redacted_thinking``
block with its opaque ``data``. A block's text is what its ``thinking_delta`` events carried, the
same text the answer's reasoning holds (so it is not kept twice: a block remembers where it starts
in the reasoning). Bounded: ``MAX_THINKING_BLOCKS`` per answer, ``MAX_SIGNATURE_CHARS`` per signature;
beyond either is a protocol error, as a server sending it is broken.
"""

from __future__ import annotations

from typing import Any, Final

from .._errors import ProtocolError
from .._records import ThinkingBlock
from ._json import TextPieces

__all__ = [
    "MAX_SIGNATURE_CHARS",
    "MAX_THINKING_BLOCKS",
    "THINKING_KINDS",
    "StreamedThinking",
    "check_room_for_thinking",
    "thinking_block",
]

MAX_THINKING_BLOCKS: Final = 128
"""Thinking blocks kept per answer (thinking and redacted)."""
MAX_SIGNATURE_CHARS: Final = 65536
"""A thinking block's signature (Anthropic's are a few hundred characters)."""
THINKING_KINDS: Final = ("thinking", "redacted_thinking")


def check_room_for_thinking(blocks: int) -> None:
    """Raise ProtocolError when an answer that has ``blocks`` thinking blocks starts one more than allowed."""
    if blocks >= MAX_THINKING_BLOCKS:
        raise ProtocolError(f"the answer has more than {MAX_THINKING_BLOCKS} thinking blocks")


def thinking_block(block: dict[str, Any]) -> ThinkingBlock | None:
    """A whole block of a non-streamed answer as kept; None when it is not a well-formed one."""
    if block.get("type") == "redacted_thinking":
        data = block.get("data")
        return ThinkingBlock("", "", data) if isinstance(data, str) else None
    thinking, signature = block.get("thinking"), block.get("signature")
    if isinstance(thinking, str) and isinstance(signature, str) and len(signature) <= MAX_SIGNATURE_CHARS:
        return ThinkingBlock(thinking, signature)
    return None


class StreamedThinking:
    """The thinking blocks of a streamed answer, as their events arrive."""

    __slots__ = ("_ended", "open")

    def __init__(self) -> None:
        self._ended: list[ThinkingBlock] = []
        self.open: _OpenBlock | None = None  # the thinking block being streamed

    def start(self, block: dict[str, Any], reasoning: TextPieces) -> None:
        """A ``content_block_start`` of a thinking or redacted_thinking block (the open one has ended)."""
        check_room_for_thinking(len(self._ended))
        if block.get("type") == "redacted_thinking":
            data = block.get("data")
            if type(data) is not str:
                raise ProtocolError("a redacted_thinking block's data is not a string")
            self._ended.append(ThinkingBlock("", "", data))
            return
        text = block.get("thinking") or ""
        if type(text) is not str:
            raise ProtocolError("a thinking block's thinking is not a string")
        self.open = _OpenBlock(text, reasoning.mark())
        self.open.sign(block.get("signature") or "")

    def sign(self, piece: object) -> None:
        """A ``signature_delta``: the open block's signature goes on (none open: nothing to sign)."""
        if self.open is not None:
            self.open.sign(piece)

    def end(self, reasoning: TextPieces) -> None:
        """The open block is over (its stop, or the next block's start)."""
        if self.open is not None:
            self._ended.append(self.open.block(reasoning, reasoning.mark()))
            self.open = None

    def blocks(self, reasoning: TextPieces) -> tuple[ThinkingBlock, ...]:
        """Every block so far, in order; one the stream left open as far as it came."""
        if self.open is None:
            return tuple(self._ended)
        return (*self._ended, self.open.block(reasoning, None))


class _OpenBlock:
    __slots__ = ("_mark", "_signature", "_signature_chars", "_start_text")

    def __init__(self, start_text: str, mark: int) -> None:
        self._start_text = start_text  # the text its start carried (none in what the API sends)
        self._mark = mark  # where its deltas' text starts in the reasoning
        self._signature: list[str] = []
        self._signature_chars = 0

    def sign(self, piece: object) -> None:
        if type(piece) is not str:
            raise ProtocolError("a thinking block's signature is not a string")
        self._signature_chars += len(piece)
        if self._signature_chars > MAX_SIGNATURE_CHARS:
            raise ProtocolError(
                f"a thinking block's signature is longer than {MAX_SIGNATURE_CHARS} characters"
            )
        self._signature.append(piece)

    def block(self, reasoning: TextPieces, until: int | None) -> ThinkingBlock:
        return ThinkingBlock(self._start_text + reasoning.since(self._mark, until), "".join(self._signature))
