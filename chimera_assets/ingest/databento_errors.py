"""Errors of the Databento API access and key hygiene: every message goes through :func:`redact`,
the logging filter scrubs known keys, and :class:`_Secret` never shows the key in str/repr.
"""

from __future__ import annotations

import base64
import logging

_REDACTED = "<redacted:DATABENTO_API_KEY>"


class DatabentoApiError(RuntimeError):
    """Base class of the errors this module raises (messages are always redacted)."""


class DatabentoAuthError(DatabentoApiError):
    """The API key is missing, or the API rejected it (HTTP 401/403)."""


class DatabentoKeyMissingError(DatabentoAuthError):
    """No API key configured (``DATABENTO_API_KEY`` unset or blank)."""


class DatabentoRequestError(DatabentoApiError):
    """A non-retryable client error (HTTP 4xx other than 401/403/408/429): fix the request."""

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


class DatabentoRetryExhausted(DatabentoApiError):
    """A retryable failure persisted through every attempt."""

    def __init__(self, message: str, attempts: int, last_status: int | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status


class DatabentoCostLimitExceeded(DatabentoApiError):
    """The estimated cost of a pull is above the configured ``max_cost_usd``."""


def redact(text: object, secret: str | None) -> str:
    """``str(text)`` with every occurrence of ``secret`` (and of its HTTP Basic-auth base64 forms)
    replaced by ``<redacted:DATABENTO_API_KEY>``. A None/empty secret returns the text unchanged.

    The base64 forms matter because a Basic ``Authorization`` header carries ``base64(key + ":")``:
    a debug dump of request headers would otherwise leak the key in encoded form.
    """
    s = str(text)
    if not secret:
        return s
    forms = {secret}
    for raw in (f"{secret}:", secret):
        enc = base64.b64encode(raw.encode()).decode()
        forms.add(enc)
        forms.add(enc.rstrip("="))
    for f in sorted(forms, key=len, reverse=True):
        if len(f) >= 4:  # never "redact" trivially short fragments out of normal text
            s = s.replace(f, _REDACTED)
    return s


class _RedactingFilter(logging.Filter):
    """Logging filter that scrubs every known key from a record's rendered message (defence in
    depth: our messages are already built from redacted text)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        msg = clean = record.getMessage()
        for secret in self.secrets:
            clean = redact(clean, secret)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_LOG_FILTER = _RedactingFilter()


class _Secret:
    """Holds the key; its str/repr never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "_Secret(<redacted>)"

    __str__ = __repr__
