"""What failed, beyond the kind: status codes and the most frequent messages of each failure kind.

Bounded: a message is cut at ``MAX_MESSAGE_CHARS`` and each kind keeps at most ``MAX_TRACKED``
distinct messages; past that the least frequent (the oldest among equals) is dropped and its count
goes to ``other``, so the counts are exact for up to ``MAX_TRACKED`` distinct messages and the few
that recur most survive any number of one-off ones. Merging (workers -> master) adds the counts and
trims again, so a merge of reports equals one process's counts within the same bound. Messages come
from records whose secrets were already redacted by the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._report_types import FailureDetailRow

__all__ = ["MAX_MESSAGE_CHARS", "MAX_REPORTED", "MAX_TRACKED", "FailureDetail"]

MAX_MESSAGE_CHARS = 200
MAX_TRACKED = 20
MAX_REPORTED = 5
"""Messages per kind in the report (the most frequent)."""


def _count(target: dict[str, int], key: str, n: int) -> None:
    target[key] = target.get(key, 0) + n


@dataclass(slots=True)
class _Kind:
    status_codes: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    other: int = 0  # failures whose message was dropped from ``messages`` (see the module docstring)

    def add_message(self, message: str, n: int) -> None:
        _count(self.messages, message[:MAX_MESSAGE_CHARS], n)
        while len(self.messages) > MAX_TRACKED:
            rarest = min(self.messages, key=self.messages.__getitem__)
            self.other += self.messages.pop(rarest)

    def merge(self, other: _Kind) -> None:
        for code, n in other.status_codes.items():
            _count(self.status_codes, code, n)
        for message, n in other.messages.items():
            self.add_message(message, n)
        self.other += other.other

    def row(self) -> FailureDetailRow:
        top = sorted(self.messages.items(), key=lambda item: -item[1])
        shown, rest = top[:MAX_REPORTED], sum(n for _, n in top[MAX_REPORTED:])
        return {
            "status_codes": dict(sorted(self.status_codes.items())),
            "messages": [{"message": message, "count": n} for message, n in shown],
            "other_messages": self.other + rest,
        }


@dataclass(slots=True)
class FailureDetail:
    """Per failure kind: status codes and messages, mergeable."""

    kinds: dict[str, _Kind] = field(default_factory=dict)

    def add(self, kind: str, status_code: int | None, message: str | None) -> None:
        part = self.kinds.setdefault(kind, _Kind())
        _count(part.status_codes, "none" if status_code is None else str(status_code), 1)
        part.add_message(message or "(no message)", 1)

    def merge(self, other: FailureDetail) -> None:
        for kind, part in other.kinds.items():
            self.kinds.setdefault(kind, _Kind()).merge(part)

    def to_dict(self) -> dict[str, Any]:
        return {
            kind: {
                "status_codes": dict(part.status_codes),
                "messages": dict(part.messages),
                "other": part.other,
            }
            for kind, part in self.kinds.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailureDetail:
        """Raises ValueError when malformed; the bounds hold whatever a worker sent."""
        detail = cls()
        try:
            for kind, part in data.items():
                incoming = _Kind(
                    status_codes={str(code): int(n) for code, n in part["status_codes"].items()},
                    other=int(part["other"]),
                )
                for message, n in part["messages"].items():
                    incoming.add_message(str(message), int(n))
                detail.kinds.setdefault(str(kind), _Kind()).merge(incoming)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a failure detail: {exc!r}") from exc
        return detail

    def report(self) -> dict[str, FailureDetailRow]:
        return {kind: part.row() for kind, part in sorted(self.kinds.items())}
