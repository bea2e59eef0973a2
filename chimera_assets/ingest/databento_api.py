"""Databento Historical API access through the real ``databento.Historical`` client.

What this adds on top of the client:

* the key comes from ``DATABENTO_API_KEY`` (or the constructor) and never appears in a log line,
  exception message or ``repr``: every message we emit goes through :func:`redact`, and the client
  errors we translate are re-raised ``from None`` with redacted text;
* bounded retries, run by ``tenacity`` (see :meth:`DatabentoApi._call`): HTTP 429 sleeps for the
  server's ``Retry-After`` (capped), 5xx / connection reset / timeouts / a truncated or unreadable
  body back off exponentially; 401/403 raise
  :class:`DatabentoAuthError` at once (retrying a bad key only burns the rate limit); other 4xx raise
  :class:`DatabentoRequestError`;
* ``fetch_range`` downloads to a hidden temporary file beside the destination, validates the DBN
  (every record is read, so a truncated body is caught and retried) and then atomically replaces
  ``dest_path``: a crash never leaves a half-written file under the final name;
* ``plan_chunks`` cuts a backfill into (series, calendar month) requests whose ids the load ledger
  records, so an interrupted backfill resumes chunk by chunk;
* tests can point the client at a loopback *http* gateway (``http://127.0.0.1:PORT`` or
  ``http://localhost:PORT``): the client forces https on any gateway URL, so for those URLs only,
  ``databento.historical.client.validate_gateway`` is patched for the duration of the client's
  construction (the gateway URL is resolved there, once).

Times: every ``start``/``end`` is UTC; a ``date`` means 00:00 UTC; a naive ``datetime`` is UTC;
``end`` is exclusive (Databento's convention).

Layout: errors, :func:`redact` and the key holder live in
:mod:`chimera_assets.ingest.databento_errors`, :func:`plan_chunks` and :class:`Chunk` in
:mod:`chimera_assets.ingest.databento_chunks`; this module holds the client wrapper and re-exports
their public names.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from chimera_assets.ingest.databento_chunks import (
    DEFAULT_DATASET,
    Chunk,
    _utc,
    infer_stype_in,
    plan_chunks,
)
from chimera_assets.ingest.databento_errors import (
    _LOG_FILTER,
    DatabentoApiError,
    DatabentoAuthError,
    DatabentoCostLimitExceeded,
    DatabentoKeyMissingError,
    DatabentoRequestError,
    DatabentoRetryExhausted,
    _Secret,
    filter_client_loggers,
    gateway_without_credentials,
    redact,
)
from chimera_assets.settings import databento_api_key, databento_gateway

logger = logging.getLogger(__name__)
logger.addFilter(_LOG_FILTER)
filter_client_loggers()  # the client logs its gateway URL

API_KEY_ENV = "DATABENTO_API_KEY"
GATEWAY_ENV = "DATABENTO_GATEWAY"
_PATCH_LOCK = threading.Lock()


def _is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")


def _loopback_validate_gateway(url: str) -> str:
    """Accept an http loopback gateway as-is (test only); anything else keeps https validation."""
    from databento.common.validation import validate_gateway

    if _is_loopback_http(url):
        return url.rstrip("/")
    return validate_gateway(url)


def _retry_after_seconds(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:  # HTTP-date form
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(str(value))
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class _Transient(Exception):
    """A retryable failure of one attempt: ``status`` (None for transport errors), the redacted
    ``message`` and the server's ``Retry-After`` in seconds (429 only; None when absent)."""

    def __init__(self, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class DatabentoApi:
    """Historical API access with retries, cost logging and key hygiene.

    ``key``: the API key, else ``$DATABENTO_API_KEY``; missing/blank raises
    :class:`DatabentoKeyMissingError` (naming the variable). ``gateway``: None for Databento's
    default, else a URL (``$DATABENTO_GATEWAY`` is read when None); only ``http://127.0.0.1...`` and
    ``http://localhost...`` are allowed over plain http. ``max_attempts``: total tries per call
    (>= 1). Backoff before retry n (n = 1, 2, ...) is ``min(backoff_max_s, backoff_base_s * 2**(n-1))``
    plus up to ``jitter`` of it at random; a 429 waits ``Retry-After`` seconds instead (capped at
    ``retry_after_max_s``; the backoff when the header is missing). ``timeout_s``: connect and read
    timeout of each HTTP request. ``sleep``: injectable for tests.
    """

    def __init__(
        self,
        key: str | None = None,
        gateway: str | None = None,
        *,
        max_attempts: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        retry_after_max_s: float = 120.0,
        jitter: float = 0.1,
        timeout_s: float = 100.0,
        max_cost_usd: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        raw = key if key is not None else databento_api_key()
        if raw is None or not str(raw).strip():
            raise DatabentoKeyMissingError(
                f"no Databento API key: set the {API_KEY_ENV} environment variable (or pass key=...)"
            )
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self._secret = _Secret(str(raw).strip())
        gateway = gateway if gateway is not None else databento_gateway()
        gateway = gateway_without_credentials(gateway, logger)  # they could only leak
        self.gateway = gateway.rstrip("/") if gateway else None
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.jitter = jitter
        self.timeout_s = timeout_s
        self.max_cost_usd = max_cost_usd
        self._sleep = sleep
        self._client = self._make_client()
        _LOG_FILTER.secrets.add(self._secret.reveal())

    def __repr__(self) -> str:
        return f"DatabentoApi(gateway={self.gateway or 'default'!r}, key=<redacted>)"

    # -- construction --------------------------------------------------------------------------

    def _make_client(self):
        import databento as db

        key = self._secret.reveal()
        try:
            if self.gateway and _is_loopback_http(self.gateway):
                # The client rewrites every gateway to https; a loopback test gateway speaks http.
                # The URL is resolved during construction only, so the patch is scoped to it.
                with (
                    _PATCH_LOCK,
                    mock.patch("databento.historical.client.validate_gateway", _loopback_validate_gateway),
                ):
                    client = db.Historical(key=key, gateway=self.gateway)
            elif self.gateway:
                if self.gateway.startswith("http://"):
                    raise DatabentoRequestError(
                        f"refusing plain-http gateway {self.gateway!r}: only loopback test gateways may use http"
                    )
                client = db.Historical(key=key, gateway=self.gateway)
            else:
                client = db.Historical(key=key)
        except ValueError as exc:
            raise DatabentoApiError(redact(f"cannot create the Databento client: {exc}", key)) from None
        # The client's per-request timeout is a class attribute; set it per instance.
        for api in (client.timeseries, client.metadata, client.symbology, client.batch):
            api.TIMEOUT = self.timeout_s
        return client

    # -- retry core ----------------------------------------------------------------------------

    def _wait(self, retry_state: RetryCallState) -> float:
        """tenacity ``wait`` before retry n (n = the failed attempt's number): the server's
        ``Retry-After`` capped at ``retry_after_max_s`` when the failure carried one, else the
        exponential ``min(backoff_max_s, backoff_base_s * 2**(n-1))`` plus up to ``jitter`` of it at
        random (proportional jitter, which tenacity's own jittered waits do not offer)."""
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        ra = failure.retry_after if isinstance(failure, _Transient) else None
        if ra is not None:
            return min(ra, self.retry_after_max_s)
        base = wait_exponential(multiplier=self.backoff_base_s, max=self.backoff_max_s)(retry_state)
        return base + (random.uniform(0, self.jitter * base) if self.jitter else 0.0)

    def _classified(self, what: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        """``fn`` wrapped so that a retryable failure becomes :class:`_Transient` (redacted text)
        and a final one (401/403, other 4xx) raises this module's error at once. Anything else
        (parameter validation, cost limit ...) propagates unchanged and is not retried."""
        import requests
        from databento.common.error import BentoClientError, BentoError, BentoServerError

        from chimera_assets.dbn.diagnostics import DbnDecodeError

        key = self._secret.reveal()

        def attempt() -> Any:
            try:
                return fn()
            except BentoClientError as exc:
                status = exc.http_status
                msg = redact(getattr(exc, "message", None) or exc, key)
                if status in (401, 403):
                    raise DatabentoAuthError(
                        f"{what}: Databento rejected the API key (HTTP {status}); check {API_KEY_ENV}. "
                        f"Server said: {msg}"
                    ) from None
                if status not in (408, 429):
                    raise DatabentoRequestError(f"{what}: HTTP {status}: {msg}", http_status=status) from None
                ra = _retry_after_seconds(getattr(exc, "headers", None)) if status == 429 else None
                raise _Transient(status, f"HTTP {status}: {msg}", retry_after=ra) from None
            except BentoServerError as exc:
                msg = redact(getattr(exc, "message", None) or exc, key)
                raise _Transient(exc.http_status, f"HTTP {exc.http_status}: {msg}") from None
            except (requests.RequestException, ConnectionError, TimeoutError) as exc:
                raise _Transient(None, f"{type(exc).__name__}: {redact(exc, key)}") from None
            except (BentoError, DbnDecodeError) as exc:
                # Streaming broke off or the body is not a complete DBN file: fetch again.
                raise _Transient(None, f"{type(exc).__name__}: {redact(exc, key)}") from None

        return attempt

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` with the retry policy (tenacity); translate client errors into this module's
        errors. ``max_attempts`` tries in all, then :class:`DatabentoRetryExhausted`."""

        def log_retry(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            logger.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.2fs",
                what,
                state.attempt_number,
                self.max_attempts,
                failure.message if isinstance(failure, _Transient) else failure,
                state.upcoming_sleep,
            )

        def exhausted(state: RetryCallState) -> Any:
            failure = state.outcome.exception() if state.outcome else None
            assert isinstance(failure, _Transient)  # only _Transient is retried
            raise DatabentoRetryExhausted(
                f"{what}: gave up after {self.max_attempts} attempts; last error: {failure.message}",
                attempts=self.max_attempts,
                last_status=failure.status,
            ) from None

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=log_retry,
            retry_error_callback=exhausted,
        )
        return retrying(self._classified(what, fn))

    # -- endpoints -----------------------------------------------------------------------------

    def dataset_range(
        self, dataset: str = DEFAULT_DATASET, schema: str | None = None
    ) -> tuple[dt.datetime, dt.datetime]:
        """Available [start, end) of ``dataset`` in UTC (``metadata.get_dataset_range``); with
        ``schema``, that schema's own range when the API reports one."""
        payload = self._call(
            f"get_dataset_range({dataset})", lambda: self._client.metadata.get_dataset_range(dataset=dataset)
        )
        rng = payload
        if schema and isinstance(payload.get("schema"), dict) and schema in payload["schema"]:
            rng = payload["schema"][schema]
        return _utc(rng["start"]), _utc(rng["end"])

    def estimate_cost(
        self,
        dataset: str,
        schema: str,
        symbols: Sequence[str],
        stype_in: str,
        start: dt.date | dt.datetime | str,
        end: dt.date | dt.datetime | str,
    ) -> float:
        """Estimated cost in USD of a ``get_range`` (``metadata.get_cost``), logged at INFO."""
        lo, hi = _utc(start), _utc(end)
        syms = list(symbols)
        cost = float(
            self._call(
                f"get_cost({schema} {','.join(syms)})",
                lambda: self._client.metadata.get_cost(
                    dataset=dataset, start=lo, end=hi, symbols=syms, schema=schema, stype_in=stype_in
                ),
            )
        )
        logger.info(
            "Databento cost estimate: %s %s %s %s..%s stype_in=%s -> $%.4f",
            dataset,
            schema,
            ",".join(syms),
            lo.isoformat(),
            hi.isoformat(),
            stype_in,
            cost,
        )
        return cost

    def fetch_range(
        self,
        dataset: str,
        schema: str,
        symbols: Sequence[str] | str,
        stype_in: str,
        start: dt.date | dt.datetime | str,
        end: dt.date | dt.datetime | str,
        dest_path: str | Path,
        *,
        check_cost: bool = True,
    ) -> Path:
        """Download ``timeseries.get_range`` (DBN, zstd) for [start, end) to ``dest_path``.

        The cost is estimated and logged first (``check_cost``; raises
        :class:`DatabentoCostLimitExceeded` above ``max_cost_usd``). Each attempt streams into a
        hidden ``.<name>.partial`` file beside ``dest_path`` (removed first: the client refuses to
        overwrite), is validated by reading every record, and only then replaces ``dest_path``
        atomically (an existing file is replaced). A truncated/corrupt body is retried like a 5xx.
        Returns ``dest_path``.
        """
        from databento_dbn import DBNError

        from chimera_assets.dbn.bounds import count_dbn_records
        from chimera_assets.dbn.diagnostics import DbnDecodeError

        syms = [symbols] if isinstance(symbols, str) else list(symbols)
        lo, hi = _utc(start), _utc(end)
        dest = Path(dest_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.partial"
        label = f"get_range({dataset} {schema} {','.join(syms)} {lo:%Y-%m-%dT%H:%M}..{hi:%Y-%m-%dT%H:%M})"
        if check_cost:
            cost = self.estimate_cost(dataset, schema, syms, stype_in, lo, hi)
            if self.max_cost_usd is not None and cost > self.max_cost_usd:
                raise DatabentoCostLimitExceeded(
                    f"{label}: estimated cost ${cost:.2f} exceeds max_cost_usd ${self.max_cost_usd:.2f}"
                )

        def attempt() -> int:
            tmp.unlink(missing_ok=True)
            try:
                try:
                    self._client.timeseries.get_range(
                        dataset=dataset,
                        schema=schema,
                        symbols=syms,
                        stype_in=stype_in,
                        start=lo,
                        end=hi,
                        path=tmp,
                    )
                except (DBNError, ValueError) as exc:
                    if not tmp.exists():
                        raise  # parameter validation before any request: not retryable
                    # The body arrived but the client cannot open it (cut/empty/garbage): retry.
                    raise DbnDecodeError(
                        f"{tmp.name}: downloaded body is not a readable DBN file ({exc})"
                    ) from None
                return count_dbn_records(tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        t0 = time.monotonic()
        n = self._call(label, attempt)
        os.replace(tmp, dest)
        logger.info(
            "%s: %d records, %d bytes -> %s in %.2fs",
            label,
            n,
            dest.stat().st_size,
            dest,
            time.monotonic() - t0,
        )
        return dest

    def fetch_chunk(self, chunk: Chunk, dest_dir: str | Path, *, check_cost: bool = True) -> Path:
        """:meth:`fetch_range` of one planned chunk into ``dest_dir / chunk.file_name``."""
        return self.fetch_range(
            chunk.dataset,
            chunk.schema,
            [chunk.series],
            chunk.stype_in,
            chunk.start,
            chunk.end,
            Path(dest_dir) / chunk.file_name,
            check_cost=check_cost,
        )

    @staticmethod
    def plan_chunks(
        series: Sequence[str],
        start: dt.date | dt.datetime | str,
        end: dt.date | dt.datetime | str,
        **kwargs: Any,
    ) -> list[Chunk]:
        """Same as the module-level :func:`plan_chunks`."""
        return plan_chunks(series, start, end, **kwargs)


__all__ = [
    "API_KEY_ENV",
    "Chunk",
    "DatabentoApi",
    "DatabentoApiError",
    "DatabentoAuthError",
    "DatabentoCostLimitExceeded",
    "DatabentoKeyMissingError",
    "DatabentoRequestError",
    "DatabentoRetryExhausted",
    "infer_stype_in",
    "plan_chunks",
    "redact",
]
