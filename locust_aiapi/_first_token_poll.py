"""First tokens between other reads: the sockets still waiting for their first token, polled at once.

The hub reads every stream in its callbacks, one loop iteration at a time (:mod:`~locust_aiapi._hub_reads`).
When the load generator is busy, one iteration runs for tens of milliseconds: hundreds of reads that
one poll found ready. A first token that arrives meanwhile waits for the next poll, and when the next
token of its stream comes first, both share one read and the kernel keeps only the newest segment's
stamp: the TTFT is one token gap late (libev's watcher priority puts it first in the next iteration,
not earlier). So the sockets still waiting for their first token are also in an epoll set of their
own, and a read that finds ``INTERVAL_S`` gone since the last look polls that set without a wait and
reads what is ready there and then: a first token waits for at most about one interval of other
reads, however long the iteration (``benchmarks/stream_fidelity.py`` at saturation).

The cost: one ``epoll_ctl`` when a body starts and one when its first token is in, a comparison per
read (with the stamp the read took anyway), and one ``epoll_wait`` per interval that passes while
streams are read (``benchmarks/paired_cost.py``: +1.3 to +1.6 % CPU per chunk). Where there is no epoll
(not Linux) nothing is polled. Each hub has its own set; a forked child starts with an empty one.
"""

from __future__ import annotations

import contextlib
import os
import select
import weakref
from typing import Any, Final, Protocol

import gevent
from gevent import monkey

__all__ = ["INTERVAL_S", "MAX_EVENTS", "FirstTokenPoll", "FirstTokenRead", "first_token_poll"]


def _original_epoll() -> Any:
    """The real ``select.epoll``: gevent's patched ``select`` has none (a wait there would block the
    hub; ours never waits). None where the platform has no epoll."""
    try:
        return monkey.get_original("select", "epoll")
    except AttributeError:
        return None


_EPOLL: Any = _original_epoll()

# how long a first token that has arrived can wait behind other reads (plus the read that is running)
INTERVAL_S: Final = 0.001
# ready sockets taken per poll (the rest wait for the next one, or for the loop)
MAX_EVENTS: Final = 64


class FirstTokenRead(Protocol):
    """A body read whose first token has not come yet."""

    def on_readable(self) -> None:
        """Read once (its socket is readable, or was: a read that finds nothing waits again)."""


class FirstTokenPoll:
    """The sockets whose first token is awaited, in an epoll set polled (without a wait) when due."""

    __slots__ = ("_epoll", "_polling", "_waiting", "due_s")

    def __init__(self) -> None:
        self._epoll = _EPOLL() if _EPOLL is not None else None
        self._waiting: dict[int, FirstTokenRead] = {}
        self.due_s = 0.0  # a read stamped from then on polls (the caller may check it first: a call less)
        self._polling = False

    def forget(self) -> None:
        """In a forked child: the epoll object is the parent's too, so it is neither used nor changed
        again (the reads in flight keep this set, empty and without an epoll: nothing is polled)."""
        self._epoll = None
        self._waiting.clear()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, fd: int, read: FirstTokenRead) -> None:
        """Watch ``fd`` for ``read`` until :meth:`discard` (with the same number: a watcher may have
        forgotten its own once closed)."""
        epoll = self._epoll
        if epoll is None:
            return
        try:
            epoll.register(fd, select.EPOLLIN)
        except FileExistsError:  # a socket of an earlier read still open under that number (never expected)
            epoll.modify(fd, select.EPOLLIN)
        except OSError:  # closed meanwhile: leave it to the loop
            return
        self._waiting[fd] = read

    def discard(self, fd: int, read: FirstTokenRead) -> None:
        """Stop watching ``fd`` for ``read``; nothing if it is not (or no longer) watched for it."""
        if self._waiting.get(fd) is not read:
            return
        del self._waiting[fd]
        with contextlib.suppress(OSError):  # already closed: the kernel took it out of the set
            self._epoll.unregister(fd)  # type: ignore[union-attr] # (in _waiting: there is an epoll)

    def poll_if_due(self, now_s: float) -> None:
        """Once ``INTERVAL_S`` has passed since the last poll (``now_s``: the stamp of the read that just
        returned): read each watched socket that is ready. Called after each streamed read (in the hub,
        never nested). Once per chunk: written out."""
        if now_s < self.due_s or self._polling:
            return
        self.due_s = now_s + INTERVAL_S  # also with none waiting: the callers' check then saves the call
        if not self._waiting:
            return
        self._polling = True
        try:
            for fd, _events in self._epoll.poll(0, MAX_EVENTS):  # type: ignore[union-attr]
                read = self._waiting.get(fd)
                if read is not None:
                    read.on_readable()  # never raises: it ends its own stream instead
        finally:
            self._polling = False


_POLLS: weakref.WeakKeyDictionary[Any, FirstTokenPoll] = weakref.WeakKeyDictionary()


def first_token_poll() -> FirstTokenPoll:
    """This hub's set (the hub reads the bodies; gevent's patched ``threading.local`` would be the
    greenlet's own). Once per body."""
    hub = gevent.get_hub()
    poll = _POLLS.get(hub)
    if poll is None:
        poll = _POLLS[hub] = FirstTokenPoll()
    return poll


def _forget_after_fork() -> None:
    for poll in list(_POLLS.values()):
        poll.forget()
    _POLLS.clear()


if hasattr(os, "register_at_fork"):  # a child shares its parent's epoll objects: it must not change them
    os.register_at_fork(after_in_child=_forget_after_fork)
