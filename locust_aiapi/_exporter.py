"""Prometheus exporter (placeholder until the exporter lands: serves nothing yet)."""

from __future__ import annotations

from typing import Any

__all__ = ["install"]


def install(environment: Any, web_ui: Any) -> None:
    """Start serving /metrics for ``environment`` (master or local runner only)."""
