"""Errors of the Databento API access and key hygiene: every message goes through :func:`redact`,
the logging filter scrubs known keys, and :class:`_Secret` never shows the key in str/repr.
"""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import urlsplit, urlunsplit

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


# scheme://user:password@host -> scheme://<redacted>@host (userinfo never ends up in a log line)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")


def redact_url_credentials(text: object) -> str:
    """``str(text)`` with the user and password of every URL in it replaced by ``<redacted>``."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}<redacted>@", str(text))


def strip_url_credentials(url: str) -> tuple[str, bool]:
    """(``url`` without its userinfo, whether it had one)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, False
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])), True


def gateway_without_credentials(gateway: str | None, log: logging.Logger) -> str | None:
    """``gateway`` without a ``user:password@`` part, with a warning naming the variable (not the value).

    The client sends the key as HTTP Basic auth on every request, which overrides a URL's own
    user:password (requests' rule), so credentials in the gateway URL reach no server: they could only
    leak into logs, errors and the run history."""
    if not gateway:
        return gateway
    url, had = strip_url_credentials(gateway.strip())
    if had:
        log.warning("DATABENTO_GATEWAY: the user:password in the gateway URL was removed (the Databento client "
                    "authenticates with the API key; credentials in a URL are never used)")
    return url


def redact(text: object, secret: str | None) -> str:
    """``str(text)`` with every occurrence of ``secret`` (and of its HTTP Basic-auth base64 forms)
    replaced by ``<redacted:DATABENTO_API_KEY>``. A None/empty secret returns the text unchanged.

    The base64 forms matter because a Basic ``Authorization`` header carries ``base64(key + ":")``:
    a debug dump of request headers would otherwise leak the key in encoded form.
    """
    s = redact_url_credentials(text)
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
        msg = clean = record.getMessage()
        clean = redact_url_credentials(clean)
        for secret in self.secrets:
            clean = redact(clean, secret)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_LOG_FILTER = _RedactingFilter()


def filter_client_loggers() -> None:
    """Scrub the databento client's own log records too (``Initialized Historical(gateway=...)``): a
    logger's filter does not apply to its children's records, so each logger is named."""
    for name in ("databento", "databento.historical.client", "databento.common.http", "databento.historical.api",
                 "databento.historical.api.timeseries", "databento.historical.api.metadata"):
        logging.getLogger(name).addFilter(_LOG_FILTER)


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
