"""What every BigQuery job the backend sends carries: cost controls, labels, retries, statistics.

- Cost controls: ``maximum_bytes_billed`` on every query job (BigQuery refuses a query that would bill
  more, before it runs) and ``job_timeout_ms`` on every query and load job (BigQuery cancels it after
  that); load jobs bill nothing, so they have no byte cap.
- Labels (BigQuery's rules: keys start with a lower-case letter; keys and values hold lower-case
  letters, digits, ``_`` and ``-``, at most 63 characters): ``app``, the Dagster run id, the asset
  (``<schema>__<table>``, the asset key), the partition range and roots of the write, and the operation.
- Retries with full-jitter exponential backoff (google-api-core's ``Retry``) for rate limits, backend
  errors and concurrent-update conflicts, decided by the error's type and BigQuery ``reason``; the
  conflict message is matched only inside the error types BigQuery uses for it.
- Statistics of every finished job (job id, bytes billed, slot milliseconds), summed per write into
  the ``MergeResult`` whose ``job_metadata`` the IO manager records on the materialization.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chimera_assets.warehouse.base import MergeResult, Slice

log = logging.getLogger(__name__)

_LABEL_BAD = re.compile(r"[^a-z0-9_-]+")

#: BigQuery ``reason`` values that mean "try again later" (rate limits, transient backend trouble).
RETRYABLE_REASONS = frozenset({
    "rateLimitExceeded", "jobRateLimitExceeded", "backendError", "jobBackendError", "internalError",
    "jobInternalError", "quotaExceeded",
})
# Concurrent DML on the same partitions: BigQuery aborts one statement with this text (reason
# "invalidQuery", HTTP 400) - atomic, so re-running it is safe.
_CONFLICT_TEXT = ("could not serialize access", "concurrent update", "too many dml statements")
# quotaExceeded also covers hard daily quotas that a retry cannot fix; they say so.
_PERMANENT_QUOTA_TEXT = ("per day", "daily", "exceeded quota for copies", "free query bytes")


def label_value(value: Any) -> str:
    """``value`` as a BigQuery label value (lower-case, allowed characters only, <= 63 chars)."""
    return _LABEL_BAD.sub("_", str(value).lower())[:63]


def label_key(key: str) -> str:
    out = label_value(key)
    return out if out[:1].isalpha() else f"k{out}"[:63]


def sanitize_labels(labels: dict[str, Any]) -> dict[str, str]:
    """Labels that BigQuery accepts; entries with a None value are left out."""
    return {label_key(k): label_value(v) for k, v in labels.items() if v is not None}


def slice_labels(slice_: Slice | None, dates: tuple[dt.date, dt.date] | None = None) -> dict[str, str]:
    """The partition range (first and last day) and roots a write covers, as labels."""
    if slice_ is not None and not slice_.everything and slice_.ranges:
        lo = min(r[1] for r in slice_.ranges)
        hi = max(r[2] for r in slice_.ranges)
        out = {"partition_range": f"{lo.isoformat()}_{hi.isoformat()}"}
        if slice_.symbols:
            out["roots"] = "-".join(slice_.symbols)
        return sanitize_labels(out)
    if slice_ is not None and slice_.everything:
        return {"partition_range": "all"}
    if dates is not None:
        return sanitize_labels({"partition_range": f"{dates[0].isoformat()}_{dates[1].isoformat()}"})
    return {}


def _reasons(exc: BaseException) -> set[str]:
    errors = getattr(exc, "errors", None) or []
    return {e.get("reason") for e in errors if isinstance(e, dict) and e.get("reason")}


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed BigQuery call (submission or job) is worth repeating unchanged.

    Retried: HTTP 429/500/502/503/504 and 409 Conflict (a concurrent update); BigQuery reasons in
    ``RETRYABLE_REASONS`` (unless a quota that resets only daily); a 400/403 whose message is BigQuery's
    concurrent-DML conflict. Never retried: anything else (bad SQL, permissions, byte cap exceeded:
    reason ``bytesBilledLimitExceeded``), so a real error surfaces at once.
    """
    from google.api_core import exceptions as ex

    reasons = _reasons(exc)
    if "bytesBilledLimitExceeded" in reasons or "accessDenied" in reasons:
        return False
    text = str(exc).lower()
    if reasons & RETRYABLE_REASONS:
        return not ("quotaExceeded" in reasons and any(t in text for t in _PERMANENT_QUOTA_TEXT))
    if isinstance(exc, (ex.TooManyRequests, ex.InternalServerError, ex.BadGateway, ex.ServiceUnavailable,
                        ex.GatewayTimeout, ex.Conflict)):
        return True
    if isinstance(exc, (ex.BadRequest, ex.Forbidden)):
        return any(t in text for t in _CONFLICT_TEXT)
    return False


@dataclass
class RetryPolicy:
    """Full-jitter exponential backoff: sleeps drawn from [0, min(initial * multiplier**n, maximum)],
    giving up after ``deadline`` seconds. A DML queue of 20 statements drains in minutes, hence 15 min."""

    initial: float = 1.0
    maximum: float = 60.0
    multiplier: float = 2.0
    deadline: float = 900.0

    def retry(self, on_retry: Callable[[BaseException], None] | None = None):
        from google.api_core import retry as api_retry

        return api_retry.Retry(
            predicate=is_retryable, initial=self.initial, maximum=self.maximum, multiplier=self.multiplier,
            timeout=self.deadline, on_error=on_retry,
        )


@dataclass
class JobStats:
    """Totals over the jobs of one write (or read)."""

    job_ids: list[str] = field(default_factory=list)
    bytes_billed: int = 0
    bytes_processed: int = 0
    slot_ms: int = 0
    retries: int = 0

    def add(self, job: Any) -> None:
        job_id = getattr(job, "job_id", None)
        if job_id:
            location = getattr(job, "location", None)
            self.job_ids.append(f"{location}.{job_id}" if location else str(job_id))
        self.bytes_billed += int(getattr(job, "total_bytes_billed", None) or 0)
        self.bytes_processed += int(getattr(job, "total_bytes_processed", None) or 0)
        self.slot_ms += int(getattr(job, "slot_millis", None) or 0)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "bigquery/job_ids": list(self.job_ids),
            "bigquery/bytes_billed": self.bytes_billed,
            "bigquery/bytes_processed": self.bytes_processed,
            "bigquery/slot_ms": self.slot_ms,
            "bigquery/job_retries": self.retries,
        }


@dataclass
class BigQueryMergeResult(MergeResult):
    """A ``MergeResult`` with the statistics of the jobs that made the write."""

    jobs: JobStats = field(default_factory=JobStats)

    def job_metadata(self) -> dict[str, Any]:
        return self.jobs.as_metadata()
