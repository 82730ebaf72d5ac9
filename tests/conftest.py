"""Fixtures every test module gets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .client_pools import close_client_pools


@pytest.fixture(autouse=True)
def _close_client_pools() -> Iterator[None]:
    yield
    close_client_pools()
