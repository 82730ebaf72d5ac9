"""Output files: checked at start, so a run never ends without the file it was asked to write."""

from __future__ import annotations

import os

from ._errors import ConfigurationError

__all__ = ["ensure_writable"]


def ensure_writable(option: str, path: str) -> None:
    """At start: the file of an output option can be written (its directory is created)."""
    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise ConfigurationError(f"cannot write {option} {path!r}: {exc.strerror or exc}") from None
