"""Raw rows whose source files are gone: found (the warning check), listed and removed (``chimera prune``).

Loads never delete (sources never delete by absence), so rows loaded from a file that was later
deleted, or replaced by a shorter copy, stay in the raw tables. :func:`stale_partitions` finds them
from metadata alone: each (partition, load_id) group of a raw table is traced through the ledger to
the files of that load that cover the partition; the group is stale when one of those files is no
longer present with the same content (sha256), or when the ledger does not know its load at all.

``chimera prune`` re-derives each stale partition from the files present: rows no present file holds
are deleted, the others are rewritten from the present files (newest file wins per key), and a
partition no present file covers is emptied. It is a dry run by default (it prints, per table and
partition, how many rows it would delete and why); ``--apply`` writes it, one MERGE per table scoped
to the stale partitions, with a ``loaded`` ledger row per file used.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.ingest import ledger
from chimera_assets.ingest.coverage import file_coverage
from chimera_assets.ingest.enrich import enrich_hook
from chimera_assets.ingest.landing import SCHEMA_TABLES, _partition_date, build_raw_frame, list_dbn_files
from chimera_assets.ingest.plan import rectangles
from chimera_assets.universe import Universe
from chimera_assets.warehouse.base import Slice, Warehouse


def present_sha256s(dirs: list[Path]) -> set[str]:
    """sha256 of every DBN file below ``dirs`` (cached per path, size and mtime: a file rewritten in
    place, so with a new size or mtime, is hashed again)."""
    out = set()
    for d in dirs:
        for p in list_dbn_files(d):
            st = p.stat()
            out.add(_cached_sha256(str(p), st.st_size, st.st_mtime_ns))
    return out


@functools.lru_cache(maxsize=16_384)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    """``ledger.file_sha256(path)``; ``size`` and ``mtime_ns`` only key the (bounded) cache."""
    return ledger.file_sha256(Path(path))


def recorded_source_dirs(wh: Warehouse, dirs: list[Path]) -> list[Path]:
    """``dirs`` plus the folders of the files the ledger recorded as loaded that still exist.

    A load may have read files outside the landing directory (``chimera run --landing-dir X``): such a
    file still at its recorded path is present, not gone, so a prune without ``--landing-dir`` never
    deletes what it loaded. A file is gone only when no folder searched holds its content (sha256)."""
    led = ledger.read_ledger(wh)
    if led.is_empty():
        return list(dirs)
    paths = led.filter(pl.col("status") == "loaded")["file_path"].drop_nulls().unique().to_list()
    extra = sorted({Path(p).parent for p in paths if Path(p).is_file()} - {Path(d) for d in dirs})
    return [*dirs, *extra]


def table_groups(wh: Warehouse, schema: str) -> pl.DataFrame:
    """(d, r, load_id, rows) of a raw table: rows per partition and load."""
    spec = SCHEMA_TABLES[schema]
    rows = wh.read(spec, columns=[spec.date_column, spec.symbol_column, "load_id"])
    return rows.select(
        _partition_date(spec).alias("d"), pl.col(spec.symbol_column).alias("r"),
        pl.col("load_id").fill_null("<no load_id>"),
    ).group_by("d", "r", "load_id").len("rows")


def stale_partitions(
    groups: pl.DataFrame, led: pl.DataFrame, present: set[str], schema: str, universe: Universe
) -> pl.DataFrame:
    """The stale (d, r, load_id, rows, reason) groups of one raw table (pure; see the module docstring).

    ``groups``: (d, r, load_id, rows); ``led``: the ledger; ``present``: sha256 of the files present.
    """
    out_schema = {"d": pl.Date, "r": pl.Utf8, "load_id": pl.Utf8, "rows": pl.UInt32, "reason": pl.Utf8}
    if groups.is_empty():
        return pl.DataFrame(schema=out_schema)
    series_root = pl.DataFrame(
        [(s, r) for r, c in universe.roots.items() for s in (*c.series, *c.statistics_series)],
        schema={"s": pl.Utf8, "root": pl.Utf8}, orient="row",
    )
    files = (
        led.filter((pl.col("status") == "loaded") & (pl.col("schema") == schema) & pl.col("rows_written").is_not_null())
        .select(
            pl.col("load_id").str.split(".").list.first().alias("base"), "content_sha256", "file_path",
            pl.col("series").fill_null("").str.split(",").alias("s"),
            pl.col("period_start").dt.date().alias("d0"),
            (pl.col("period_end") - pl.duration(microseconds=1)).dt.date().alias("d1"),
        )
        .explode("s").join(series_root, on="s", how="left")
    )
    known = set(led.filter(pl.col("status") == "loaded")["load_id"].drop_nulls().to_list())
    g = groups.with_columns(pl.col("rows").cast(pl.UInt32))
    # The load's files whose rectangle holds the partition; a load recorded without rectangles
    # (older ledger rows) counts all its files.
    hit = g.join(files, left_on=["load_id", "r"], right_on=["base", "root"], how="inner").filter(
        (pl.col("d") >= pl.col("d0")) & (pl.col("d") <= pl.col("d1"))
    )
    matched = hit.select("d", "r", "load_id").unique()
    loose = g.join(matched, on=["d", "r", "load_id"], how="anti").join(
        files.select("base", "content_sha256", "file_path").unique(), left_on="load_id", right_on="base", how="inner"
    )
    traced = pl.concat([hit.select("d", "r", "load_id", "rows", "content_sha256", "file_path"),
                        loose.select("d", "r", "load_id", "rows", "content_sha256", "file_path")])
    gone = (
        traced.filter(~pl.col("content_sha256").is_in(sorted(present)))
        .group_by("d", "r", "load_id").agg(pl.col("rows").first(), pl.col("file_path").unique().sort())
        .select("d", "r", "load_id", "rows", pl.format("source file(s) gone or changed: {}",
                                                      pl.col("file_path").list.join(", ")).alias("reason"))
    )
    unknown = g.filter(~pl.col("load_id").is_in(sorted(known))).join(
        traced.select("d", "r", "load_id").unique(), on=["d", "r", "load_id"], how="anti"
    ).select("d", "r", "load_id", "rows", pl.lit("load unknown to the ledger (no loaded row records it)").alias("reason"))
    return pl.concat([gone, unknown]).cast(out_schema).sort("d", "r", "load_id")


@dataclass
class TablePrune:
    table: str
    schema: str
    stale: pl.DataFrame
    before: dict[tuple, int] = field(default_factory=dict)  # rows per partition now
    after: dict[tuple, int] = field(default_factory=dict)  # rows per partition from the present files
    deleted: dict[tuple, int] = field(default_factory=dict)  # rows no present file holds


def plan_prune(wh: Warehouse, universe: Universe, dirs: list[Path]) -> list[TablePrune]:
    """Per raw table, the stale partitions and what re-deriving them from the present files does."""
    led = ledger.read_ledger(wh)
    present = present_sha256s(dirs)
    out = []
    for schema, spec in SCHEMA_TABLES.items():
        if not wh.table_exists(spec):
            continue
        stale = stale_partitions(table_groups(wh, schema), led, present, schema, universe)
        if stale.is_empty():
            continue
        tp = TablePrune(spec.fqn, schema, stale)
        keys = sorted({(d, r) for d, r in stale.select("d", "r").unique().rows()})
        current = wh.read(spec, Slice.from_keys(keys))
        fresh = _rebuild(spec, schema, keys, universe, dirs, "dry-run")
        cur_k = current.select(_partition_date(spec).alias("d"), pl.col(spec.symbol_column).alias("r"), *spec.key)
        new_k = fresh.select(_partition_date(spec).alias("d"), pl.col(spec.symbol_column).alias("r"), *spec.key)
        gone = cur_k.join(new_k, on=["d", "r", *spec.key], how="anti")
        tp.before = {(d, r): n for d, r, n in cur_k.group_by("d", "r").len().rows()}
        tp.after = {(d, r): n for d, r, n in new_k.group_by("d", "r").len().rows()}
        tp.deleted = {(d, r): n for d, r, n in gone.group_by("d", "r").len().rows()}
        out.append(tp)
    return out


def _present_files(schema: str, keys: list, universe: Universe, dirs: list[Path]):
    wanted = set(keys)
    covs = []
    for d in dirs:
        for p in list_dbn_files(d):
            try:
                c = file_coverage(p, universe)
            except (DbnDecodeError, OSError):
                continue  # an unreadable file gives no rows (the raw asset reports it)
            if c.schema == schema and c.partitions & wanted:
                covs.append(c)
    return sorted(covs, key=lambda c: (c.mtime_ns, str(c.path)))


def _rebuild(spec, schema: str, keys: list, universe: Universe, dirs: list[Path], load_id: str) -> pl.DataFrame:
    covs = _present_files(schema, keys, universe, dirs)
    frame, _ = build_raw_frame(spec, [(c.path, c.info) for c in covs], keys, universe, load_id)
    return frame


def apply_prune(wh: Warehouse, universe: Universe, dirs: list[Path], plans: list[TablePrune],
                run_id: str | None = None) -> int:
    """Write the prune: per table one MERGE over its stale partitions (slice-scoped, so rows no present
    file holds are deleted), then its ledger rows. Returns the rows deleted."""
    deleted = 0
    for tp in plans:
        spec = SCHEMA_TABLES[tp.schema]
        keys = sorted({(d, r) for d, r in tp.stale.select("d", "r").unique().rows()})
        load_id = ledger.new_load_id()
        started = ledger.now_utc()
        covs = _present_files(tp.schema, keys, universe, dirs)
        frame, loads = build_raw_frame(spec, [(c.path, c.info) for c in covs], keys, universe, load_id)
        frame = enrich_hook(spec, wh, keys)(frame, keys)
        wh.merge(spec, frame, Slice.from_keys(keys))
        rows_by = {fl.path: fl.rows_for_keys for fl in loads}
        finished = ledger.now_utc()
        entries = []
        for c in covs:
            claim = [k for k in keys if k in c.partitions]
            for rroots, d0, d1 in rectangles(claim):
                span = ledger.partition_span(d0, d1)
                series = sorted({s for r in rroots for s in (universe.roots[r].statistics_series if tp.schema in (
                    "statistics", "definition") else universe.roots[r].series)})
                entries.append(dict(
                    source_kind="file", dataset=c.info.dataset, schema=tp.schema, series=",".join(series),
                    stype_in=c.info.stype_in, period_start=span[0], period_end=span[1], file_path=str(c.path),
                    content_sha256=c.sha256, dbn_version=c.info.dbn_version, record_count=c.records,
                    rows_written=rows_by.get(c.path, 0), first_ts_event=c.first_ts, last_ts_event=c.last_ts,
                    status="loaded", error="chimera prune: re-derived from the files present", run_id=run_id,
                    started_at=started, finished_at=finished,
                ))
        for i, e in enumerate(entries):
            e["load_id"] = load_id if i == 0 else f"{load_id}.{i}"
        ledger.record(wh, entries)
        deleted += sum(tp.deleted.values())
    return deleted


def format_prune(plans: list[TablePrune], applied: bool) -> str:
    """The report ``chimera prune`` prints: per table and partition, rows now -> after, and why."""
    if not plans:
        return "nothing to prune: every raw row's source file is present"
    verb = "deleted" if applied else "would delete"
    lines = []
    for tp in plans:
        reasons = tp.stale.group_by("d", "r").agg(pl.col("reason").unique().sort().str.join("; "))
        why = {(d, r): w for d, r, w in reasons.rows()}
        total = sum(tp.deleted.values())
        lines.append(f"{tp.table}: {len(why)} stale partition(s), {verb} {total} row(s)")
        for d, r in sorted(why):
            lines.append(f"  {d.isoformat()}|{r}: {tp.before.get((d, r), 0)} row(s) -> {tp.after.get((d, r), 0)}, "
                         f"{verb} {tp.deleted.get((d, r), 0)}; {why[(d, r)]}")
    if not applied:
        lines.append("dry run: nothing was changed; run `chimera prune --apply` to do it")
    return "\n".join(lines)
