"""``ops.databento_load_state``: one row per load attempt (file or API chunk), failed ones included.

Rows are upserted on ``load_id`` (never slice-deleted), so the ledger only grows. A file whose
sha256 already has a ``loaded`` row is reported ``skipped_unchanged`` by the registration step; an
API chunk with a ``loaded`` row is not requested again, which is how an interrupted backfill resumes.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
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


def file_sha256(path: Path, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


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


def already_loaded(
    warehouse: Warehouse, schema: str, shas: Iterable[str], series: set[str], first: date, last: date
) -> bool:
    """True when every file (by sha256) already has a ``loaded`` row of ``schema`` that wrote all of
    ``series`` over a span containing [first, last]: loading them again would change nothing."""
    shas = list(shas)
    if not shas:
        return False
    lo, hi = partition_span(first, last)
    # Only rows of loads INTO the table count (they carry rows_written); an API chunk's fetch row is also
    # 'loaded', over its whole month and series, but says nothing about what the table holds.
    led = read_ledger(warehouse).filter(
        (pl.col("status") == "loaded") & (pl.col("schema") == schema) & pl.col("content_sha256").is_in(shas)
        & (pl.col("period_start") <= lo) & (pl.col("period_end") >= hi) & pl.col("rows_written").is_not_null()
    )
    for sha in shas:
        rows = led.filter(pl.col("content_sha256") == sha)["series"].to_list()
        if not any(series <= set((r or "").split(",")) for r in rows):
            return False
    return True
