"""What users send: :class:`Prompt`, :class:`ConversationScript`, the :class:`PromptSource` protocol and
the built-in sources (a list in order or shuffled, sharded across workers; synthetic prompts of a
chosen token length).

**Words per token.** No tokenizer ships with the package (none can be downloaded at run time), so a
synthetic prompt of N tokens is N words drawn from :data:`ONE_TOKEN_WORDS`: short, common English words
that every BPE tokenizer in wide use (GPT-2, cl100k, o200k, Llama 3, Qwen 2) encodes as one token each,
leading space included. The server adds its chat template around the message (typically 5-10 tokens
for one user message), so its ``usage.prompt_tokens`` is the requested count plus that overhead; the
record keeps both (``requested_prompt_tokens`` next to ``prompt_tokens``). Each word is four characters
with its space, so the mock's "four characters per token" estimate counts the same N.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ._distributions import Distribution

__all__ = [
    "ONE_TOKEN_WORDS",
    "ConversationScript",
    "ListSource",
    "Prompt",
    "PromptSource",
    "SyntheticSource",
    "WorkItem",
    "as_script",
    "estimate_tokens",
    "first_prompt",
    "synthetic_text",
]

ONE_TOKEN_WORDS: tuple[str, ...] = tuple(
    " " + word
    for word in """the and for are but not you all any can had her was one our out day get has him his how man
    new now old see two way who boy did its let put say she too use big end far few got job may own run set
    top try yes yet ago air art bad bed box car cut dog eat eye fun god gun hot law lot low map mix oil pay
    red sea sit sun tax war win""".split()  # noqa: SIM905 - a list literal would be 80 quoted words
)
"""Words of one token each (four characters with the leading space): see the module's docstring."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """One request's worth of input: the messages and what is asked of the answer."""

    messages: tuple[Mapping[str, Any], ...]
    max_tokens: int | None = None  # None: the user's own max_tokens
    name: str | None = None  # None: the name chat() is given (default "chat")
    requested_prompt_tokens: int | None = None  # synthetic prompts: the length asked for
    conversation_id: str | None = None
    turn: int | None = None

    @classmethod
    def of(cls, text: str, system: str | None = None, **fields: Any) -> Prompt:
        messages: list[Mapping[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": text})
        return cls(tuple(messages), **fields)


@dataclass(frozen=True, slots=True)
class ConversationScript:
    """A conversation to replay: the user's turns in order, each answered by the server."""

    user_turns: tuple[str, ...]
    system: str | None = None
    name: str | None = None
    max_tokens: int | None = None


WorkItem = Prompt | ConversationScript


@runtime_checkable
class PromptSource(Protocol):
    """Anything that hands out work items, one per call (it never runs out: it cycles or generates)."""

    def next_item(self) -> WorkItem: ...


def first_prompt(item: WorkItem) -> Prompt:
    """A conversation asked as one request is its system message and first user turn."""
    if isinstance(item, Prompt):
        return item
    return Prompt.of(item.user_turns[0], item.system, max_tokens=item.max_tokens, name=item.name)


def as_script(item: WorkItem) -> ConversationScript:
    """A single prompt replayed as a conversation: each of its user messages is one turn."""
    if isinstance(item, ConversationScript):
        return item
    system = next((str(m.get("content")) for m in item.messages if m.get("role") == "system"), None)
    turns = tuple(str(m.get("content")) for m in item.messages if m.get("role") == "user")
    return ConversationScript(turns or ("",), system, item.name, item.max_tokens)


@dataclass
class ListSource:
    """Items in file order (``sequential``) or shuffled by ``seed``, cycling when exhausted.

    :meth:`shard` gives worker ``index`` of ``count`` every ``count``-th item starting at ``index``
    (after the same seeded shuffle on every worker), so workers never send the same item until their
    share is exhausted and cycles. With fewer items than workers, a worker without a share cycles
    through all of them (documented: then items repeat across workers).
    """

    items: Sequence[WorkItem]
    order: str = "sequential"
    seed: int | None = None
    output_tokens: Distribution | None = None  # overrides each item's max_tokens when set
    _position: int = field(default=0, init=False)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("a prompt list needs at least one item")
        if self.order not in ("sequential", "shuffle"):
            raise ValueError(f"order must be 'sequential' or 'shuffle', got {self.order!r}")
        self._rng = random.Random(self.seed)
        if self.order == "shuffle":
            shuffled = list(self.items)
            random.Random(self.seed).shuffle(shuffled)
            self.items = shuffled

    def shard(self, index: int, count: int) -> ListSource:
        """This worker's share (already shuffled, so it keeps its order: sequential). With more workers
        than items, those past the end take one item each, in turn: the fewest prompts sent twice."""
        items = list(self.items)
        share = items[index::count] or [items[index % len(items)]]
        seed = None if self.seed is None else self.seed * 1_000 + index
        return ListSource(share, "sequential", seed, self.output_tokens)

    def next_item(self) -> WorkItem:
        item = self.items[self._position % len(self.items)]
        self._position += 1
        if self.output_tokens is None:
            return item
        return replace(item, max_tokens=self.output_tokens.sample(self._rng))


@dataclass
class SyntheticSource:
    """Prompts of ``prompt_tokens`` words of one token each, after a shared prefix of
    ``shared_prefix_tokens`` (the same text on every worker: a prompt cache can reuse it), with
    ``max_tokens`` from ``output_tokens``. The prefix is added to the sampled length, like vLLM's
    ``--random-prefix-len``."""

    prompt_tokens: Distribution
    output_tokens: Distribution | None = None
    shared_prefix_tokens: int = 0
    seed: int | None = None
    _rng: random.Random = field(init=False)
    _prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._prefix = synthetic_text(random.Random(f"prefix-{self.seed}"), self.shared_prefix_tokens)

    def shard(self, index: int, count: int) -> SyntheticSource:
        seed = None if self.seed is None else self.seed * 1_000 + index
        return SyntheticSource(self.prompt_tokens, self.output_tokens, self.shared_prefix_tokens, seed)

    def next_item(self) -> WorkItem:
        tokens = self.prompt_tokens.sample(self._rng)
        text = self._prefix + synthetic_text(self._rng, tokens)
        max_tokens = self.output_tokens.sample(self._rng) if self.output_tokens is not None else None
        return Prompt.of(
            text, max_tokens=max_tokens, requested_prompt_tokens=tokens + self.shared_prefix_tokens
        )


def synthetic_text(rng: random.Random, tokens: int) -> str:
    """``tokens`` words of one token each (with their leading spaces)."""
    return "".join(rng.choices(ONE_TOKEN_WORDS, k=tokens))


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, one per four other characters.

    BPE tokenizers spend roughly one token (0.7-1.5) per Chinese character and about four characters
    of English per token; good enough for a history budget, never reported as a measurement.
    """
    cjk = sum(1 for char in text if "\u3000" <= char <= "\u9fff" or "\uff00" <= char <= "\uffef")
    return cjk + (len(text) - cjk + 3) // 4
