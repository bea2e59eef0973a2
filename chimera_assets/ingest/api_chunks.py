"""Databento Historical API pulls as month x series chunks, recorded in the ledger, cached as files.

A chunk already fetched (its complete file present in ``$CHIMERA_HOME/api_cache``) is never requested
again, so a backfill killed between chunks resumes where it stopped; the run's fetch rows are written
to the ledger in one write. Chunk boundaries are calendar
months (clamped to what the dataset has), so the same month is the same request every time.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from chimera_assets.dbn.bounds import count_dbn_records
from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.ingest import ledger
from chimera_assets.ingest.databento_api import Chunk, DatabentoApi, DatabentoApiError, plan_chunks, redact
from chimera_assets.universe import Universe, get_universe
from chimera_assets.warehouse.base import Warehouse


class ApiIngestError(RuntimeError):
    """An API pull failed; the message names the request (never the key)."""


def _month_start(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, 1, tzinfo=dt.UTC)


def _next_month(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=dt.UTC)


def chunks_for(
    schema: str, keys: list[tuple[dt.date, str | None]], universe: Universe, available_end: dt.datetime | None
) -> list[Chunk]:
    """Month x series chunks covering the partitions ``keys`` (with the evening session before them)."""
    dates = sorted({d for d, _ in keys})
    roots = sorted({r for _, r in keys if r})
    series: list[str] = []
    for r in roots:
        cfg = universe.roots[r]
        series += list(cfg.statistics_series if schema in ("statistics", "definition") else cfg.series)
    start = _month_start(dates[0] - dt.timedelta(days=3))
    end = _next_month(dates[-1] + dt.timedelta(days=2) if schema == "statistics" else dates[-1])
    if available_end is not None:
        end = min(end, available_end)
    return plan_chunks(series, start, end, dataset=universe.dataset, schema=schema)


def fetch_chunks(
    api: DatabentoApi, chunks: list[Chunk], cache_dir: Path, wh: Warehouse, run_id: str | None, log
) -> list[Path]:
    """Fetch every chunk not yet done; return the cached files of all chunks (fetched or reused).

    A chunk is done when its cached file exists and either matches the sha256 of its ``loaded`` fetch
    row, or has no fetch row yet (a run killed before its ledger write: the file only ever appears by an
    atomic rename after the whole download was validated, and it is validated again here). The fetch
    rows of a run are written in ONE ledger write at the end (or with the failure), not one per chunk.
    """
    led = ledger.read_ledger(wh).filter(
        (pl.col("source_kind") == "api") & (pl.col("status") == "loaded") & pl.col("rows_written").is_null()
    )
    # The sha256 recorded when each chunk was fetched: a cached file that no longer matches is refetched.
    done = dict(zip(led["file_path"].to_list(), led["content_sha256"].to_list(), strict=True))
    paths: list[Path] = []
    rows: list[dict] = []
    for i, chunk in enumerate(chunks, 1):
        dest_dir = cache_dir / chunk.schema
        dest = dest_dir / chunk.file_name
        base = dict(
            source_kind="api", dataset=chunk.dataset, schema=chunk.schema, series=chunk.series,
            stype_in=chunk.stype_in, period_start=chunk.start, period_end=chunk.end, file_path=str(dest),
            run_id=run_id,
        )
        if dest.exists():
            sha = ledger.file_sha256(dest)
            if done.get(str(dest)) == sha:
                log.info(f"chunk {i}/{len(chunks)} {chunk.chunk_id}: already loaded, reused")
                paths.append(dest)
                continue
            if str(dest) not in done and _complete(dest):
                log.info(f"chunk {i}/{len(chunks)} {chunk.chunk_id}: in the cache from an interrupted run, reused")
                now = ledger.now_utc()
                rows.append(dict(base, status="loaded", content_sha256=sha, started_at=now, finished_at=now))
                paths.append(dest)
                continue
        started = ledger.now_utc()
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            path = api.fetch_chunk(chunk, dest_dir)
        except (DatabentoApiError, OSError) as exc:
            msg = redact(f"Databento API request {chunk.chunk_id} failed: {exc}", None)
            ledger.record(wh, [*rows, dict(base, status="failed", error=msg[:2000], started_at=started,
                                           finished_at=ledger.now_utc())])
            raise ApiIngestError(msg) from exc
        rows.append(dict(base, status="loaded", content_sha256=ledger.file_sha256(path), started_at=started,
                         finished_at=ledger.now_utc()))
        log.info(f"chunk {i}/{len(chunks)} {chunk.chunk_id}: fetched")
        paths.append(path)
    ledger.record(wh, rows)  # one ledger write for the run's fetches
    return paths


def _complete(path: Path) -> bool:
    try:
        count_dbn_records(path)
    except DbnDecodeError:
        return False
    return True


def fetch_chunks_for(context, source, schema: str, keys, wh: Warehouse) -> list[Path]:
    """The API mode of the raw assets: pull the chunks these partitions need, return their files."""
    universe = get_universe()
    try:
        api = DatabentoApi(key=source.resolved_api_key(), gateway=source.api_gateway)
        _, available_end = api.dataset_range(universe.dataset)
    except DatabentoApiError as exc:
        raise ApiIngestError(str(exc)) from exc
    chunks = chunks_for(schema, keys, universe, available_end)
    context.log.info(f"{schema}: {len(chunks)} API chunk(s) (month x series) for {len(keys)} partition(s)")
    return fetch_chunks(api, chunks, source.api_cache_path(), wh, context.run.run_id, context.log)
