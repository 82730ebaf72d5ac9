"""What each request would redo, done once: a target URL's parsing and a request head's building.

A load test sends the same request line and headers over and over; only the body changes, and the
head depends on it through its length alone (``Content-Length``). geventhttpclient parses the URL
and builds the head anew for every request, checking the method, the target and every header
against its regular expressions: about a tenth of a short streamed request's CPU. Here both are
kept: a head without its ``Content-Length`` line on the client that builds it (host, port and
proxy are fixed per client), keyed by method, target, headers and the client's own default headers
and HTTP version, at most ``MAX_KEPT`` per client (emptied when full), so bounded whatever the number
of distinct URLs or header sets; parsed URLs in a bounded LRU cache. Heads with a header value that
is not a string are built each time (``1``, ``True`` and ``1.0`` are one key but three heads). A head
that fails its checks raises on every request, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from geventhttpclient.client import HTTPClient
from geventhttpclient.url import URL

__all__ = ["MAX_KEPT", "request_head", "target"]

MAX_KEPT: Final = 64  # per client (one per user): its distinct methods, targets and header sets
_HEADS: Final = "_locust_aiapi_heads"  # the attribute of an HTTPClient holding its heads
# how geventhttpclient ends the head of an empty POST, PUT or PATCH: a kept head is that minus this
# line (from its CRLF on: a header of the caller's that merely ends in the same text is no match)
_EMPTY_LENGTH: Final = b"\r\nContent-Length: 0\r\n\r\n"


@functools.lru_cache(maxsize=512)
def target(url: str) -> tuple[URL, str]:
    """``url`` parsed, and its request target as sent (quoted)."""
    parsed = URL(url)
    return parsed, getattr(parsed, "quoted_uri", parsed.request_uri)


def request_head(client: HTTPClient, method: str, uri: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """The encoded request line and headers ``client`` sends for ``body``."""
    for value in headers.values():
        if type(value) is not str:  # 1, True and 1.0 are one key but three heads; a list is no key
            return _built(client, method, uri, headers, body)
    # what else the head depends on and could change: the client's defaults and version
    key = (method, uri, client.version, *dict.values(client.default_headers), *headers.items())
    kept: dict[tuple[Any, ...], bytes | None] | None = client.__dict__.get(_HEADS)
    if kept is None:
        kept = client.__dict__[_HEADS] = {}
    try:
        start = kept.get(key, b"")
    except TypeError:  # a default header with several values (a list)
        start = None
    if start == b"":
        start = _start_of(client, method, uri, headers)
        if len(kept) >= MAX_KEPT:
            kept.clear()
        kept[key] = start
    if start is None:  # no Content-Length of ours to end it with (GET, DELETE, or the caller's own)
        return _built(client, method, uri, headers, body)
    return b"%s\r\nContent-Length: %d\r\n\r\n" % (start, len(body))


def _start_of(client: HTTPClient, method: str, uri: str, headers: Mapping[str, str]) -> bytes | None:
    """The head of an empty body minus its ``Content-Length`` line, when geventhttpclient ends it
    with one (a POST, PUT or PATCH without a Content-Length of the caller's)."""
    if any(name.lower() == "content-length" for name in headers):
        return None
    head = _built(client, method, uri, headers, b"")
    return head[: -len(_EMPTY_LENGTH)] if head.endswith(_EMPTY_LENGTH) else None


def _built(client: HTTPClient, method: str, uri: str, headers: Mapping[str, str], body: bytes) -> bytes:
    head = client._build_request(method, uri, body=body, headers=dict(headers), chunked=False)
    return head.encode("latin-1")
