"""The public API is what __all__ says, sorted, and every name in it exists."""

from __future__ import annotations

import locust_aiapi
import locust_aiapi.dialects
import locust_aiapi.mock


def test_all_is_sorted_and_complete() -> None:
    for module in (locust_aiapi, locust_aiapi.dialects, locust_aiapi.mock):
        names = list(module.__all__)
        assert names == sorted(set(names)), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_base_users_are_abstract() -> None:
    assert locust_aiapi.AIChatUser.abstract is True
    assert locust_aiapi.EmbeddingUser.abstract is True


def test_one_user_class_can_chat_and_embed() -> None:
    assert callable(locust_aiapi.AIChatUser.chat)
    assert callable(locust_aiapi.AIChatUser.embed)
