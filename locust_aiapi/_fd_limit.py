"""How many sockets one process may open: the soft RLIMIT_NOFILE raised to the hard one, and a warning.

Every open stream holds one socket, so one file descriptor. Many systems start processes with a soft
limit of 1,024 open files; Locust raises it to 10,000 when it can (and warns when it cannot), which
still stops one process short of 10,000 streams plus its own files. The hard limit is the ceiling an
unprivileged process may raise its soft limit to, so at start we go that far and say so, in one line,
only when even that cannot hold the users asked for.

Pure standard library and a leaf of the package: the client side and the mock server both use it.
"""

from __future__ import annotations

import resource

__all__ = ["FD_MARGIN", "open_files_needed", "open_files_warning", "raise_open_files_limit"]

FD_MARGIN = 100
"""Descriptors a process needs besides its streams: stdio, the interpreter's and gevent's own, log and
output files, a master's or web UI's sockets, a connection being replaced."""

_UNLIMITED_FALLBACK = 1_048_576  # Linux's default fs.nr_open: the most a soft limit can be set to


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as far as the OS allows); returns the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, _UNLIMITED_FALLBACK)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. macOS refuses more than kern.maxfilesperproc
            return soft
        return target
    return soft


def open_files_needed(users: int) -> int:
    """Descriptors for ``users`` concurrent streams (one connection each) and the process itself."""
    return max(0, users) + FD_MARGIN


def open_files_warning(limit: int, users: int) -> str | None:
    """One line when ``limit`` open files cannot hold ``users`` streams, saying how to raise it."""
    needed = open_files_needed(users)
    if limit == resource.RLIM_INFINITY or limit >= needed:
        return None
    return (
        f"locust-aiapi: the open files limit is {limit} (RLIMIT_NOFILE, already raised to the hard "
        f"limit), too low for {users:,} users: each stream holds a socket, about {needed:,} are needed and "
        f"requests beyond ~{max(0, limit - FD_MARGIN):,} concurrent ones will fail; raise it before starting "
        f"(ulimit -n {needed} in the shell, as root for the hard limit; LimitNOFILE= in systemd; "
        f"docker run --ulimit nofile={needed}:{needed}; more workers also help)"
    )
