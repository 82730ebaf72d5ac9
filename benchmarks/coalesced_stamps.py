"""Can a late reader get each TLS record's (or TCP write's) own kernel stamp by reading one at a time?

A server thread writes ``--writes`` records ``--gap-ms`` apart while the client does not read for
``--late-ms``; then the client reads them one record at a time with reads of exactly one record's
length (for TLS: the 5-byte record header read with ``MSG_PEEK``, then ``recvmsg(5 + length)``), and
prints each read's kernel stamp minus the moment its record was written. For comparison, the same with
a reader that is on time (it reads each record as it arrives).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/coalesced_stamps.py [--writes 5] [--gap-ms 10] [--late-ms 60]

Measured on this machine (Linux 6.18, loopback), 5 writes 10 ms apart, reader 60 ms late:

    tcp late:    stamp - write per record  +41.0 +30.8 +20.6 +10.4 +0.0 ms
    tls late:    stamp - write per record  +40.9 +30.7 +20.5 +10.3 +0.0 ms
    tls late:    (3 runs of 3: the first record kept its own stamp, +0.0, the others as above)
    tcp on time: stamp - write per record   +0.0  +0.0  +0.0  +0.0 +0.0 ms (tls the same)

and a streamed answer's first token (request; head at once; first token 200 ms later; the second
10 / 30 / 50 ms after it; the reader late by 15 ms more than that), 5 runs each, tcp and tls alike:

    first token, second 10 ms later:  +10.3 +10.3 +10.4 +10.3 +10.3 ms
    first token, second 50 ms later:  +50.4 +50.4 +50.4 +50.4 +50.5 ms

A record read late carries the NEWEST write's stamp, however exactly it is read: when a segment
arrives while earlier ones still wait, ``tcp_try_coalesce`` merges it into the queue's last buffer and
gives that buffer the new segment's stamp (``to->tstamp = from->tstamp``), so the stamps of the
earlier segments are gone before any read. Only while the queue's last buffer is still shared with the
sender (loopback: until the sender has the ACK) does a segment stay separate, which is how the first TLS
record above kept its stamp; a streamed first token never did. Reading record by record costs system
calls and recovers (almost) nothing: a coalesced read's stamp is an upper bound, and the record says so
(``shared_read_token_events``, ``first_token_shared_read``). What helps is a reader that is on time.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import trustme

from locust_aiapi import _rx_stamps as rx
from locust_aiapi._tls_stream import TlsStream

PAYLOAD = b'data: {"choices":[{"index":0,"delta":{"content":"tok"},"finish_reason":null}]}\n\n'


def _pair(tls: bool, folder: Path) -> tuple[Any, socket.socket, Any]:
    """(client stream, its raw socket, server end), connected; the TLS handshake done."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    raw = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert rx.enable_rx_stamps(raw)
    if not tls:
        return raw, raw, server
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
    server_context.num_tickets = 0  # only the records we time are in the socket
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    accepted: list[ssl.SSLSocket] = []
    thread = threading.Thread(target=lambda: accepted.append(server_context.wrap_socket(server, True)))
    thread.start()
    stream = TlsStream(raw, client_context, "127.0.0.1")
    stream.do_handshake()
    thread.join()
    return stream, raw, accepted[0]


def _read_one_record(raw: socket.socket, tls: bool, clock: rx.RxClock) -> float | None:
    """One record read with a read of exactly its length; its kernel stamp."""
    size = len(PAYLOAD)
    if tls:
        header = raw.recv(5, socket.MSG_PEEK | socket.MSG_WAITALL)
        size = 5 + struct.unpack("!xxxH", header)[0]
    data, ancdata, _flags, _address = raw.recvmsg(size, rx.ANC_SIZE, socket.MSG_WAITALL)
    assert len(data) == size
    return clock.stamp_s(ancdata, time.perf_counter())


def run(tls: bool, writes: int, gap_s: float, late_s: float | None) -> list[float]:
    """Each record's kernel stamp minus its write, in ms; ``late_s`` None: the reader is on time."""
    with tempfile.TemporaryDirectory() as folder:
        _stream, raw, server = _pair(tls, Path(folder))
        clock, written_s, stamps_s = rx.RxClock(), [], []
        for _ in range(writes):
            server.sendall(PAYLOAD)
            written_s.append(time.perf_counter())
            if late_s is None:
                stamps_s.append(_read_one_record(raw, tls, clock))
            time.sleep(gap_s)
        if late_s is not None:
            time.sleep(max(0.0, late_s - writes * gap_s))
            stamps_s = [_read_one_record(raw, tls, clock) for _ in range(writes)]
        server.close()
        raw.close()
    pairs = zip(stamps_s, written_s, strict=True)
    return [(stamp_s - write_s) * 1e3 for stamp_s, write_s in pairs if stamp_s is not None]


def first_token(tls: bool, itl_s: float, late_s: float) -> float:
    """A streamed answer's pattern: request, head at once, first token 200 ms later, the second
    ``itl_s`` after it; the reader comes ``late_s`` after the first token and reads exactly one record.
    The first token's stamp minus its write, in ms."""
    with tempfile.TemporaryDirectory() as folder:
        stream, raw, server = _pair(tls, Path(folder))
        clock = rx.RxClock()
        stream.sendall(b"GET")
        server.recv(3)
        server.sendall(PAYLOAD)  # the head
        _read_one_record(raw, tls, clock)
        time.sleep(0.2)
        server.sendall(PAYLOAD)
        written_s = time.perf_counter()
        time.sleep(itl_s)
        server.sendall(PAYLOAD)
        time.sleep(max(0.0, late_s - itl_s))
        stamp_s = _read_one_record(raw, tls, clock)
        server.close()
        raw.close()
    assert stamp_s is not None
    return (stamp_s - written_s) * 1e3


def _ms(values_ms: list[float]) -> str:
    return " ".join(f"{value_ms:+5.1f}" for value_ms in values_ms) + " ms"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=10.0)
    parser.add_argument("--late-ms", type=float, default=60.0)
    args = parser.parse_args()
    if not rx.KERNEL_STAMPS_AVAILABLE:
        print("no kernel receive stamps on this platform")
        return 1
    rx.keep_stamping_on()
    time.sleep(0.05)  # the kernel's switch is deferred (see _rx_stamps._keeper)
    for name, tls, late_s in (
        ("tcp late", False, args.late_ms / 1e3),
        ("tls late", True, args.late_ms / 1e3),
        ("tcp on time", False, None),
        ("tls on time", True, None),
    ):
        errors_ms = run(tls, args.writes, args.gap_ms / 1e3, late_s)
        print(f"{name + ':':13s} stamp - write per record {_ms(errors_ms)}")
    for tls in (False, True):
        for itl_ms in (10, 30, 50):
            errors_ms = [first_token(tls, itl_ms / 1e3, (itl_ms + 15) / 1e3) for _ in range(5)]
            scheme = "tls" if tls else "tcp"
            late = f"second {itl_ms} ms later, read {itl_ms + 15} ms late"
            print(f"{scheme} first token, {late}: {_ms(errors_ms)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
