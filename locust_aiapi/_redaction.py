"""Secrets never reach a record: whatever a server echoes back, the API key is replaced.

Servers echo keys ("Incorrect API key provided: sk-..."), sometimes base64- or URL-encoded (a
401 body holding the Basic credentials it refused). :class:`Redactor` knows every form of every
credential sent and is applied once, where server text enters a record (error messages, request
ids, finish reasons).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[redacted]"

_SECRET_HEADERS = ("authorization", "api-key", "x-api-key")
_MIN_SECRET = 4  # shorter values would redact ordinary words


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces each form of each secret (longest first, so no part of one survives)."""

    forms: tuple[str, ...] = ()

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Redactor:
        """The credentials among the request headers (a Bearer/Basic token without its scheme)."""
        secrets = []
        for name, value in headers.items():
            if name.lower() in _SECRET_HEADERS and value:
                scheme, _, token = value.partition(" ")
                secrets.append(token if scheme.lower() in ("bearer", "basic") and token else value)
        return cls.of(secrets)

    @classmethod
    def of(cls, secrets: list[str]) -> Redactor:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) < _MIN_SECRET:
                continue
            raw = secret.encode()
            forms.update((secret, quote(secret, safe=""), quote_plus(secret)))
            forms.add(base64.b64encode(raw).decode())
            forms.add(base64.urlsafe_b64encode(raw).decode())
            forms.add(base64.b64encode(raw).decode().rstrip("="))
        return cls(tuple(sorted(forms, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)
