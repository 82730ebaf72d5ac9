"""Which prompt source a user draws from: the options' (``--ai-dataset``, ``--ai-prompt-tokens``), else its
class attribute ``prompts``; one source per user class and process, sharded by worker index.

In a distributed run, worker ``i`` takes share ``i`` of ``n``, where ``n`` is ``--expect-workers`` (which
the master sends its workers with every spawn): shares are disjoint and deterministic as long as the
workers that run are the ones expected. A worker beyond them (index >= n) widens ``n`` to its index + 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._datasets import DatasetError, load_dataset
from ._distributions import Distribution, parse_distribution
from ._errors import ConfigurationError
from ._options import AIOptions
from ._prompts import ConversationScript, ListSource, Prompt, PromptSource, SyntheticSource, WorkItem
from ._run_state import RunState, attach

__all__ = ["base_source", "class_source", "next_item", "options_source", "source_for", "worker_share"]

_OPTIONS_KEY = "--ai-*"
_SOURCE_FIELDS = ("dataset", "prompt_tokens", "output_tokens", "shared_prefix_tokens", "seed", "prompt_order")


def options_source(options: AIOptions) -> PromptSource | None:
    """The source the options ask for (None: none), checked; raises ConfigurationError."""
    output = _distribution("--ai-output-tokens", options.output_tokens)
    if options.dataset and options.prompt_tokens:
        raise ConfigurationError("--ai-dataset and --ai-prompt-tokens contradict each other: pass one")
    if options.prompt_tokens:
        prompt = _distribution("--ai-prompt-tokens", options.prompt_tokens)
        assert prompt is not None
        return SyntheticSource(prompt, output, options.shared_prefix_tokens, options.seed)
    if options.shared_prefix_tokens:
        raise ConfigurationError("--ai-shared-prefix-tokens needs --ai-prompt-tokens (synthetic prompts)")
    if options.dataset:
        try:
            items = load_dataset(options.dataset)
        except DatasetError as exc:
            raise ConfigurationError(f"--ai-dataset {exc}") from None
        return ListSource(items, options.prompt_order, options.seed, output)
    return None


def _distribution(flag: str, text: str | None) -> Distribution | None:
    if not text:
        return None
    try:
        return parse_distribution(text)
    except ValueError as exc:
        raise ConfigurationError(f"{flag}: {exc}") from None


def class_source(prompts: Any, options: AIOptions) -> PromptSource:
    """A user class's ``prompts`` attribute as a source: a PromptSource, or texts / Prompts in a list."""
    if isinstance(prompts, PromptSource):
        return prompts
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise ConfigurationError(
            "prompts must be a PromptSource or a non-empty list of texts, Prompts or ConversationScripts"
        )
    items = [Prompt.of(item) if isinstance(item, str) else item for item in prompts]
    if not all(isinstance(item, (Prompt, ConversationScript)) for item in items):
        raise ConfigurationError("prompts: every item must be a text, a Prompt or a ConversationScript")
    output = _distribution("--ai-output-tokens", options.output_tokens)
    return ListSource(items, options.prompt_order, options.seed, output)


def worker_share(environment: Any) -> tuple[int, int]:
    """(index, count) of this process among the workers by Locust's numbering, where the master has not
    said its place (``RunState.worker_place``): a worker that joined a running test; (0, 1) outside a
    distributed run."""
    from locust.runners import WorkerRunner

    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        return 0, 1
    index = max(0, int(runner.worker_index))
    expected = getattr(environment.parsed_options, "expect_workers", 1) or 1
    return index, max(int(expected), index + 1)


def base_source(state: RunState) -> PromptSource | None:
    """The options' source, loaded once per process and set of options (the start-up check loads it)."""
    key = (_OPTIONS_KEY, *(getattr(state.options, name) for name in _SOURCE_FIELDS))
    if key not in state.prompt_bases:
        state.prompt_bases[key] = options_source(state.options)
    return state.prompt_bases[key]  # type: ignore[no-any-return]


def source_for(user: Any) -> PromptSource:
    """The (cached) source of ``user``'s class in its environment, this process's share of it."""
    environment = user.environment
    state = attach(environment)
    for cached in (_OPTIONS_KEY, type(user)):
        if cached in state.prompt_sources:
            return state.prompt_sources[cached]  # type: ignore[no-any-return]
    source = base_source(state)
    key: Any = _OPTIONS_KEY
    if source is None:
        prompts = getattr(user, "prompts", None)
        if prompts is None:
            raise ConfigurationError(
                f"{type(user).__name__} has no prompts: set the class attribute 'prompts', "
                "or pass --ai-dataset PATH or --ai-prompt-tokens SPEC"
            )
        source, key = class_source(prompts, state.options), type(user)
    shard = getattr(source, "shard", None)
    if shard is not None:
        source = shard(*(state.worker_place or worker_share(environment)))
    state.prompt_sources[key] = source
    return source


def next_item(user: Any) -> WorkItem:
    return source_for(user).next_item()
