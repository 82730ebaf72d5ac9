"""Client connection pools that are closed after each test (``conftest.py``): a pool holds its sockets
until it is closed, and one left open is an unclosed socket at the test process's exit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geventhttpclient.client import HTTPClientPool

_open: list[HTTPClientPool] = []


def client_pool(**options: Any) -> HTTPClientPool:
    """An ``HTTPClientPool(**options)``, closed once the test is over."""
    from geventhttpclient.client import HTTPClientPool  # at use: importing this file patches nothing

    pool = HTTPClientPool(**options)
    _open.append(pool)
    return pool


def close_client_pools() -> None:
    while _open:
        _open.pop().close()
