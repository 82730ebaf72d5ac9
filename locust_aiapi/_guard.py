"""Listeners never raise into Locust: each is wrapped once, where it is registered.

The first exception of each listener is logged with its traceback and context; later ones are
counted (a listener failing on every request must not flood the log) and the end-of-run report
says how many there were.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["guarded", "listener_errors"]

log = logging.getLogger("locust_aiapi")

listener_errors: Counter[str] = Counter()
"""Exceptions caught per listener name, for this process."""


def guarded(listener: Callable[..., Any], what: str | None = None) -> Callable[..., None]:
    """``listener`` wrapped so that an exception is logged once (then counted), never raised."""
    name: str = what or str(getattr(listener, "__qualname__", repr(listener)))

    def guard(*args: Any, **kwargs: Any) -> None:
        try:
            listener(*args, **kwargs)
        except Exception:
            listener_errors[name] += 1
            if listener_errors[name] == 1:
                log.exception("locust-aiapi: %s failed (further failures of it are only counted)", name)

    guard.__name__ = guard.__qualname__ = f"guarded({name})"
    return guard
