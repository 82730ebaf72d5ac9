"""What does a kernel receive stamp cost per read? BodyReader over loopback, kernel vs user stamps.

A writer greenlet sends one small chunked SSE event at a time; the reader reads it through
:class:`~locust_aiapi._transport.BodyReader` (one recv per chunk, as at model speed). The difference
between the two modes is the cost of ``recvmsg`` + parsing the ancillary stamp + the clock conversion.

With ``--tls`` the same over TLS (one record per chunk; the server's encryption is in both figures):
before, gevent's ``SSLSocket`` with user stamps (what HTTPS did); after, the shared context's
:class:`~locust_aiapi._tls_stream.TlsStream` with kernel stamps (``recvmsg`` on the raw socket, the
record decrypted from a ``MemoryBIO``).

    .venv/bin/python benchmarks/rx_stamp_cost.py [--reads 20000] [--tls]
"""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()

import argparse  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import trustme  # noqa: E402

from locust_aiapi import _rx_stamps as rx  # noqa: E402
from locust_aiapi._head import BoundedResponse  # noqa: E402
from locust_aiapi._limits import Deadlines, Limits  # noqa: E402
from locust_aiapi._tls import shared_context  # noqa: E402
from locust_aiapi._tls_stream import TlsStream  # noqa: E402
from locust_aiapi._transport import BodyReader  # noqa: E402

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"tok"},"finish_reason":null}]}\n\n'
CHUNK = b"%x\r\n%s\r\n" % (len(EVENT), EVENT)


class _Pool:
    def release_socket(self, sock: object) -> None: ...

    def return_socket(self, sock: object) -> None: ...


def measure(reads: int, kernel: bool, tls: Path | None = None) -> float:
    """Microseconds per write + read of one chunk."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client: Any = socket.create_connection(listener.getsockname())
    server: Any
    if tls is None:
        server, _ = listener.accept()
    else:
        client, server = _tls_pair(listener, client, tls, kernel)
    if kernel and tls is None:
        assert rx.enable_rx_stamps(client)
    server.sendall(HEAD)
    response = BoundedResponse(client, _Pool(), Deadlines(Limits(), time.perf_counter(), first_token=False))
    reader = BodyReader(response, Deadlines(Limits(), time.perf_counter(), first_token=False))
    began_s = time.perf_counter()
    for _ in range(reads):
        server.send(CHUNK)
        reader.read()
    elapsed_s = time.perf_counter() - began_s
    assert (reader.lag_s is not None) is kernel
    reader.close()
    for sock in (client, server, listener):
        sock.close()
    return elapsed_s / reads * 1e6


def _tls_pair(listener: socket.socket, raw: socket.socket, folder: Path, kernel: bool) -> tuple[Any, Any]:
    """Client and server ends of one TLS connection: a TlsStream (kernel) or gevent's SSLSocket."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
    accepted = gevent.spawn(lambda: server_context.wrap_socket(listener.accept()[0], server_side=True))
    if kernel:
        client = shared_context(True, str(folder / "ca.pem")).wrap_socket(raw, server_hostname="127.0.0.1")
        assert isinstance(client, TlsStream)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=str(folder / "ca.pem"))
        client = context.wrap_socket(raw, server_hostname="127.0.0.1")
    return client, accepted.get(timeout=5)


def _pki(folder: Path) -> Path:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
    (folder / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=20000)
    parser.add_argument("--tls", action="store_true", help="also over TLS: SSLSocket before, TlsStream after")
    args = parser.parse_args()
    for _ in range(3):
        user_us, kernel_us = measure(args.reads, False), measure(args.reads, True)
        print(
            f"per chunk: user stamps {user_us:.2f} µs, kernel stamps {kernel_us:.2f} µs, "
            f"difference {kernel_us - user_us:+.2f} µs"
        )
    if not args.tls:
        return
    with tempfile.TemporaryDirectory() as folder:
        pki = _pki(Path(folder))
        for _ in range(3):
            before_us, after_us = measure(args.reads, False, pki), measure(args.reads, True, pki)
            print(
                f"per chunk over TLS: SSLSocket + user stamps {before_us:.2f} µs, TlsStream + kernel stamps "
                f"{after_us:.2f} µs, difference {after_us - before_us:+.2f} µs"
            )


if __name__ == "__main__":
    main()
