"""One TLS client context per process and verification setting, shared by every user.

Why: Locust's ``FastHttpUser`` has each user's connection pool build its own ``SSLContext``, and
building one loads the CA store: ~17 ms of CPU per user. 300 users spawned at once over HTTPS held
the hub for seconds (TTFT error p99 1.2 s against 9 ms over plain HTTP). Here the context is built
once, on first use, per ``(verify, ca_bundle)``, and every pool gets that same object.

Why verification is on: ``FastHttpUser`` defaults to ``insecure = True``, which sends the API key to
whoever answers on the address. Verification is on by default (system CA store, or a PEM bundle);
``verify=False`` is only for when the user asks, and says so once in the log.

geventhttpclient rewrites ``check_hostname`` (and ``verify_mode``) of the context it is given from
its pool's ``insecure`` flag; on a shared context one user class could thereby switch checks off for
everybody. :class:`_SharedContext` therefore ignores those writes once it is configured: the
verification setting is decided here, once.

Kernel receive stamps. Where the kernel stamps what a socket receives (see ``_rx_stamps``),
``wrap_socket`` returns a :class:`~locust_aiapi._tls_stream.TlsStream` (an ``SSLObject`` over memory
BIOs, fed by ``recvmsg`` on the raw socket) instead of gevent's ``SSLSocket``, so HTTPS chunks carry the
kernel's arrival time. The same context makes it: verification, SNI and ALPN are unchanged, and its
handshake takes the same turns. Elsewhere (and for server sockets) it is gevent's ``SSLSocket``.

Handshakes take turns. A client handshake costs ~0.8 ms of CPU here (OpenSSL 3.0), in two steps;
300 users spawned at once have 300 steps become runnable together, and a first token that arrives
meanwhile is stamped up to ~100 ms late (hub stalls of 40-120 ms measured, against none beyond plain
HTTP's spawn stalls with turns). So one step runs at a time per process, after the loop has run the
I/O already pending (``gevent.idle``, waited for at most 1 ms, so a saturated loop still handshakes),
and a handshake under way takes its next step before new ones begin (``_handshake_turns``).
The CPU is the limit either way: the burst's last handshake finished within ~10 % of the time without.

TLS session resumption is not done: measured, it saves ~0.03 ms of the 0.8 ms (TLS 1.3 resumption
still does the key exchange, which is the cost). And the case that hurt, a spawn burst, opens every
connection at once, before any session exists; afterwards the pool reuses keep-alive connections
(300 handshakes for 600 requests of 300 users). With TLS 1.3 the ticket also arrives only with the
first response bytes, and RFC 8446 (appendix C.4) advises against reusing one ticket across many
connections.
"""

from __future__ import annotations

import _ssl
import logging
import os
import ssl
import time
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.socket
import gevent.ssl

from ._errors import ConfigurationError
from ._handshake_turns import HandshakeTurns
from ._rx_stamps import enable_rx_stamps
from ._tls_stream import TlsStream

__all__ = ["ContextFactory", "check_ca_bundle", "context_factory", "shared_context"]

ALPN_PROTOCOLS = ("http/1.1",)
INSECURE_WARNING = (
    "TLS certificate verification is OFF (--ai-insecure): the API key goes to whoever answers on the host"
)

logger = logging.getLogger(__name__)

_contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}
HANDSHAKE_IDLE_WAIT_MAX_S = 0.001
_handshake_turns = HandshakeTurns()

# the C-level attributes, reached past the properties that lock them below
_CHECK_HOSTNAME: Any = _ssl._SSLContext.__dict__["check_hostname"]
_VERIFY_MODE: Any = _ssl._SSLContext.__dict__["verify_mode"]


class _SharedContext(gevent.ssl.SSLContext):  # type: ignore[misc]
    """A client context whose verification settings cannot change once configured."""

    _locked = False

    def lock(self) -> None:
        self._locked = True

    def wrap_socket(
        self, sock: Any, server_side: bool = False, do_handshake_on_connect: bool = True, **kwargs: Any
    ) -> Any:
        tls: Any
        if not server_side and set(kwargs) <= {"server_hostname"} and enable_rx_stamps(sock):
            tls = TlsStream(sock, self, kwargs.get("server_hostname"))  # kernel-stamped reads
            enable_rx_stamps(tls)
        else:
            tls = super().wrap_socket(sock, server_side=server_side, do_handshake_on_connect=False, **kwargs)
        if do_handshake_on_connect:
            _handshake_behind_io(tls)
        return tls

    @property
    def check_hostname(self) -> bool:
        return bool(_CHECK_HOSTNAME.__get__(self))

    @check_hostname.setter
    def check_hostname(self, value: bool) -> None:
        if not self._locked:
            _CHECK_HOSTNAME.__set__(self, value)

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        return ssl.VerifyMode(_VERIFY_MODE.__get__(self))

    @verify_mode.setter
    def verify_mode(self, value: ssl.VerifyMode) -> None:
        if not self._locked:
            _VERIFY_MODE.__set__(self, value)


def _handshake_behind_io(tls: Any) -> None:
    """``tls.do_handshake()``, one step at a time per process, each when the loop is idle (see above)."""
    timeout_s = tls.gettimeout()
    deadline_s = None if timeout_s is None else time.monotonic() + timeout_s
    tls.settimeout(0.0)
    try:
        _handshake_steps(tls, deadline_s)
    except BaseException:
        tls.close()  # what ssl does when its own handshake fails: no socket left to the collector
        raise
    tls.settimeout(timeout_s)


def _handshake_steps(tls: Any, deadline_s: float | None) -> None:
    later = False  # a handshake under way goes first (see _handshake_turns)
    while True:
        with _handshake_turns.turn(later, _remaining_s(deadline_s)):
            with gevent.Timeout(HANDSHAKE_IDLE_WAIT_MAX_S, False):
                gevent.idle()
            try:
                tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                wait = gevent.socket.wait_read
            except ssl.SSLWantWriteError:
                wait = gevent.socket.wait_write
        later = True
        wait(tls.fileno(), timeout=_remaining_s(deadline_s))  # socket.timeout: a `timeout` failure


def _remaining_s(deadline_s: float | None) -> float | None:
    return None if deadline_s is None else max(0.0, deadline_s - time.monotonic())


def check_ca_bundle(path: str) -> str:
    """``path`` if it is a readable file of PEM certificates, else :class:`ConfigurationError`."""
    if not os.path.isfile(path):
        raise ConfigurationError(f"--ai-ca-bundle {path}: no such file")
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=path)
    except ssl.SSLError as error:
        raise ConfigurationError(
            f"--ai-ca-bundle {path}: not a PEM certificate bundle ({error.reason})"
        ) from None
    except OSError as error:
        raise ConfigurationError(f"--ai-ca-bundle {path}: cannot read: {error.strerror or error}") from None
    if not probe.cert_store_stats()["x509_ca"]:
        raise ConfigurationError(f"--ai-ca-bundle {path}: holds no CA certificate")
    return path


def shared_context(verify: bool = True, ca_bundle: str | None = None) -> ssl.SSLContext:
    """The process's client context for this setting, built on the first call."""
    key = (verify, ca_bundle if verify else None)
    context = _contexts.get(key)
    if context is None:
        context = _build_context(*key)
        _contexts[key] = context
    return context


def _build_context(verify: bool, ca_bundle: str | None) -> ssl.SSLContext:
    context = _SharedContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname check and CERT_REQUIRED by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        logger.warning(INSECURE_WARNING)
    elif ca_bundle is not None:
        context.load_verify_locations(cafile=check_ca_bundle(ca_bundle))
    else:
        _load_system_store(context)
    context.lock()
    return context


def _load_system_store(context: ssl.SSLContext) -> None:
    """The system store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured); certifi's if it is empty.

    A minimal container may have no CA file at all; geventhttpclient already depends on certifi.
    A store loaded lazily from a directory counts zero here, and certifi then only adds trust in
    the same public roots.
    """
    context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if context.cert_store_stats()["x509_ca"]:
        return
    try:
        import certifi
    except ImportError:  # pragma: no cover - geventhttpclient requires it
        return
    context.load_verify_locations(cafile=certifi.where())


@dataclass(frozen=True)
class ContextFactory:
    """What ``FastHttpUser.ssl_context_factory`` is set to: returns the shared context.

    An instance, not a function, so that as a class attribute it is not bound to the user.
    """

    verify: bool = True
    ca_bundle: str | None = None

    def __call__(self, cafile: str | None = None, **_: Any) -> ssl.SSLContext:
        # geventhttpclient passes its default CA file (certifi's); which CAs to trust is decided here
        return shared_context(self.verify, self.ca_bundle)


def context_factory(verify: bool = True, ca_bundle: str | None = None) -> ContextFactory:
    """The ``ssl_context_factory`` for ``--ai-insecure`` (``verify=False``) / ``--ai-ca-bundle``."""
    return ContextFactory(verify, ca_bundle if verify else None)
