"""``ops.databento_load_state``: one row per load attempt (file or API chunk), failed ones included.

Rows are upserted on ``load_id`` (never slice-deleted), so the ledger only grows. A file load's
``loaded`` row records the partitions it was loaded into as a rectangle: the roots of ``series`` x the
trade dates [``period_start``, ``period_end``) (see :mod:`chimera_assets.ingest.plan`); its
``first_ts_event``/``last_ts_event``/``record_count`` are the file's own. The table rows of a load carry
the load_id of its first ledger row; the load's other rows have ``<load_id>.<n>``. A file whose
partitions are all loaded is reported ``skipped_unchanged``; an API chunk with a ``loaded`` fetch row
(or a complete file in the API cache) is not requested again, which is how a backfill resumes.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from chimera_assets.schemas import LOAD_STATE
from chimera_assets.warehouse.base import Warehouse

STATUSES = ("loaded", "failed", "skipped_unchanged")


def new_load_id() -> str:
    return uuid.uuid4().hex


def now_utc() -> datetime:
    return datetime.now(UTC)


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file's bytes (streamed by ``hashlib.file_digest``: memory stays bounded)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def ledger_row(**values) -> dict:
    """A complete ledger row: unspecified columns are NULL; status must be a known one."""
    row = {c: None for c in LOAD_STATE.column_names}
    unknown = set(values) - set(row)
    if unknown:
        raise KeyError(f"not ledger columns: {sorted(unknown)}")
    row.update(values)
    if row["status"] not in STATUSES:
        raise ValueError(f"ledger status {row['status']!r} not in {STATUSES}")
    row["load_id"] = row["load_id"] or new_load_id()
    return row


def record(warehouse: Warehouse, rows: list[dict]) -> None:
    """Append ledger rows (upsert on load_id)."""
    if rows:
        frame = pl.DataFrame([ledger_row(**r) for r in rows], schema=LOAD_STATE.polars_schema())
        warehouse.merge(LOAD_STATE, frame, None)


def read_ledger(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.read(LOAD_STATE)


def loaded_sha256s(warehouse: Warehouse) -> set[str]:
    led = read_ledger(warehouse)
    return set(led.filter(pl.col("status") == "loaded")["content_sha256"].drop_nulls().to_list())


def failed_sha256s(warehouse: Warehouse) -> set[str]:
    """Files whose last attempt failed (a later success clears them)."""
    led = read_ledger(warehouse).filter(pl.col("content_sha256").is_not_null())
    last = led.sort("finished_at", nulls_last=False).group_by("content_sha256").last()
    return set(last.filter(pl.col("status") == "failed")["content_sha256"].to_list())


def partition_span(first: date, last: date) -> tuple[datetime, datetime]:
    """The UTC span recorded for a load of trade dates [first, last]: [first 00:00, last+1 00:00)."""
    return (datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC))

