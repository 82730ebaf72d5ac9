"""What the workload asked for against what the server did, and statistics by conversation turn.

:class:`WorkloadStats` keeps, per process: counters of requested prompt and output tokens next to the
prompt and output tokens the server reported for the same requests, the number of answers much
shorter than asked (fewer than :data:`SHORT_ANSWER_RATIO` of ``max_tokens``: the server stopped at
EOS, so a length sweep measures less decode than planned), and a :class:`NameStats` per turn of the
requests that carry one. Everything merges exactly (workers ship deltas, like ``_phases``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ._records import RequestRecord
from ._report_types import RequestedTokensReport, TurnRow, WorkloadReport
from ._summary import NameStats

__all__ = ["SHORT_ANSWER_RATIO", "RequestedTokens", "WorkloadStats", "short_answer_warning"]

SHORT_ANSWER_RATIO = 0.5
"""An answer with fewer output tokens than this share of ``max_tokens`` counts as "much shorter"."""

SHORT_ANSWERS_WARN_SHARE = 0.2
"""The summary warns when more than this share of answers that asked for a length was much shorter."""


@dataclass(slots=True)
class RequestedTokens:
    """Counters over the requests whose prompt or output length the workload chose."""

    prompt_requests: int = 0  # requests with a requested prompt length and a reported prompt_tokens
    requested_prompt_tokens: int = 0
    reported_prompt_tokens: int = 0
    output_requests: int = 0  # successful requests with a requested max_tokens and an output count
    requested_output_tokens: int = 0
    output_tokens: int = 0
    short_answers: int = 0

    def add(self, record: RequestRecord) -> None:
        if record.requested_prompt_tokens is not None and record.prompt_tokens is not None:
            self.prompt_requests += 1
            self.requested_prompt_tokens += record.requested_prompt_tokens
            self.reported_prompt_tokens += record.prompt_tokens
        asked, got = record.requested_output_tokens, record.output_tokens
        if record.ok and asked is not None and got is not None:
            self.output_requests += 1
            self.requested_output_tokens += asked
            self.output_tokens += got
            if got < asked * SHORT_ANSWER_RATIO:
                self.short_answers += 1

    def merge(self, other: RequestedTokens) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _COUNTERS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestedTokens:
        values = {name: data[name] for name in _COUNTERS}
        if not all(type(value) is int and value >= 0 for value in values.values()):
            raise ValueError(f"not RequestedTokens counters: {values!r}")
        return cls(**values)

    @property
    def empty(self) -> bool:
        return not (self.prompt_requests or self.output_requests)

    def report(self) -> RequestedTokensReport:
        return {**self.to_dict(), "short_answer_warning": short_answer_warning(self)}  # type: ignore[typeddict-item]


_COUNTERS = tuple(f.name for f in fields(RequestedTokens))


def short_answer_warning(asked: RequestedTokens) -> str | None:
    """One line when many answers were much shorter than asked (None: nothing to say)."""
    if not asked.output_requests or asked.short_answers <= asked.output_requests * SHORT_ANSWERS_WARN_SHARE:
        return None
    mean_asked = asked.requested_output_tokens / asked.output_requests
    mean_got = asked.output_tokens / asked.output_requests
    return (
        f"{asked.short_answers} of {asked.output_requests} answers were much shorter than asked "
        f"(mean {mean_got:.0f} output tokens for max_tokens {mean_asked:.0f}): the server stopped at EOS. "
        "For exact lengths ask the server to ignore EOS (vLLM/SGLang: extra_body ignore_eos=True, or "
        "min_tokens=N; TGI, llama.cpp and hosted APIs differ, see README)"
    )


@dataclass
class WorkloadStats:
    """Requested tokens and per-turn statistics of one process."""

    asked: RequestedTokens = field(default_factory=RequestedTokens)
    turns: dict[int, NameStats] = field(default_factory=dict)

    def add(self, record: RequestRecord) -> None:
        self.asked.add(record)
        if record.turn is not None:
            stats = self.turns.get(record.turn)
            if stats is None:
                stats = self.turns[record.turn] = NameStats()
            stats.add(record)

    def merge(self, other: WorkloadStats) -> None:
        self.asked.merge(other.asked)
        for turn, stats in other.turns.items():
            self.turns.setdefault(turn, NameStats()).merge(stats)

    def take_report(self) -> dict[str, Any] | None:
        """Worker: the deltas since the last report (None when there are none)."""
        if self.asked.empty and not self.turns:
            return None
        payload = {
            "asked": self.asked.to_dict(),
            "turns": {str(turn): stats.to_dict() for turn, stats in self.turns.items()},
        }
        self.asked, self.turns = RequestedTokens(), {}
        return payload

    def absorb(self, payload: Mapping[str, Any]) -> None:
        """Master: merge a worker's deltas (raises ValueError when malformed, before merging anything)."""
        asked = RequestedTokens.from_dict(payload["asked"])
        turns = {int(turn): NameStats.from_dict(data) for turn, data in payload["turns"].items()}
        if any(turn < 1 for turn in turns):
            raise ValueError("a turn number must be 1 or more")
        self.merge(WorkloadStats(asked, turns))

    def report(self) -> WorkloadReport:
        rows: list[TurnRow] = [{"turn": turn, **self.turns[turn].report_row()} for turn in sorted(self.turns)]
        return {"requested": self.asked.report(), "turns": rows}
