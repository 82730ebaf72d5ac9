"""A hostile scenario served by a child process, for tests whose client must not share a GIL with it.

In one process the server's writing thread and the client take turns on the GIL, so the client is never
more than a little behind and a "flood" never fills its socket: only a server in another process can
write faster than the client reads. ``python -m tests.hostile_process NAME [KEY=JSON ...]`` prints the
URL, serves until its stdin closes, then prints one JSON line of what it served.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests._support import ROOT, terminate


@contextmanager
def served_by_child(name: str, **params: Any) -> Iterator[str]:
    """The URL of scenario ``name`` served by a child process; the child is stopped on exit."""
    args = [f"{key}={json.dumps(value)}" for key, value in params.items()]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile_process", name, *args],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        if child.stdin is not None:
            child.stdin.close()
        terminate(child)
        if child.stdout is not None:
            child.stdout.close()


def main(argv: list[str]) -> None:
    from tests.hostile_scenarios import scenario
    from tests.hostile_server import HostileServer

    params = {key: json.loads(value) for key, _, value in (arg.partition("=") for arg in argv[1:])}
    with HostileServer(scenario(argv[0], **params)) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or goes away)


if __name__ == "__main__":
    main(sys.argv[1:])
