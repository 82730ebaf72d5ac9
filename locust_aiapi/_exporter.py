"""Serve Prometheus metrics: ``/metrics`` on the web UI, or a standalone port when headless.

The composition root calls :func:`install` on the master or the single process of a local run,
never on a worker. The metrics come from one :class:`~locust_aiapi._collector.AICollector` in a dedicated
``CollectorRegistry`` (not client_python's global one), read at scrape time. The standalone server is
gevent's WSGI server, so a scrape is one more greenlet in Locust's loop and never blocks it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import choose_encoder

from ._collector import AICollector
from ._errors import ConfigurationError
from ._run_state import RunState

__all__ = ["build_registry", "install"]

log = logging.getLogger("locust_aiapi")

ROUTE_ENDPOINT = "locust_aiapi_metrics"


def build_registry(environment: Any, state: RunState) -> CollectorRegistry:
    """A fresh registry holding the collector for ``environment``'s run state and runner."""
    registry = CollectorRegistry(auto_describe=False)
    collector = AICollector(
        environment,
        summary=lambda: state.summary,
        lost_workers=lambda: len(state.ledger.lost) if state.ledger is not None else 0,
        max_label_values=state.options.metrics_max_names,
    )
    registry.register(collector)
    return registry


def install(environment: Any, web_ui: Any, state: RunState) -> Callable[[], None] | None:
    """Start serving /metrics for ``environment`` (master or local runner only); returns how to stop
    the standalone server, if one was started.

    Raises :class:`ConfigurationError` when the headless port cannot be bound.
    """
    parsed = environment.parsed_options
    registry = build_registry(environment, state)
    if web_ui is not None:
        base_path = str(getattr(parsed, "web_base_path", None) or "").rstrip("/")
        add_route(web_ui, registry, f"{base_path}/metrics")
        log.info("Prometheus metrics at %s/metrics on the web UI", base_path)
    elif parsed is not None:  # Locust used as a library without a web UI: bind no port of our own
        return _serve(registry, state.options.metrics_host, state.options.metrics_port)
    return None


def add_route(web_ui: Any, registry: CollectorRegistry, path: str = "/metrics") -> None:
    """Serve ``registry`` at ``path`` of Locust's Flask app, behind ``--web-login`` when it is on."""
    from flask import Response, request

    def metrics() -> Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encoder(registry), content_type=content_type)

    view = web_ui.auth_required_if_enabled(metrics)
    web_ui.app.add_url_rule(path, endpoint=ROUTE_ENDPOINT, view_func=view)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host or "0.0.0.0"
    return f"http://{shown}:{port}/metrics"


def _serve(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    from gevent.pywsgi import WSGIServer

    server = WSGIServer((host, port), make_wsgi_app(registry), log=None, error_log=log)
    try:
        server.start()  # binds now (so a busy port fails here) and accepts in a greenlet
    except OSError as exc:
        # gevent appends the address to strerror; the URL already says it
        reason = exc.args[1] if len(exc.args) == 2 and isinstance(exc.args[1], str) else str(exc)
        raise ConfigurationError(
            f"cannot serve Prometheus metrics on {_url(host, port)}: {reason} "
            "(change --ai-metrics-host/--ai-metrics-port, or pass --ai-no-metrics)"
        ) from None
    log.info("Prometheus metrics at %s", _url(host, server.server_port))

    return lambda: server.stop(timeout=1)
