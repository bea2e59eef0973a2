"""The public decoder: a DBN file -> polars frames, chunk by chunk (see the package docstring for units)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from chimera_assets.dbn.bars import OHLCV_SCHEMAS, ohlcv_chunk
from chimera_assets.dbn.bounds import bounded_chunk_rows, record_bound
from chimera_assets.dbn.diagnostics import DbnDecodeError, DecodeStats
from chimera_assets.dbn.header import enum_str, open_store
from chimera_assets.dbn.instruments import definition_chunk
from chimera_assets.dbn.statistics import statistics_chunk
from chimera_assets.dbn.symbology import mapping_frame, roots_frame

logger = logging.getLogger(__name__)

SUPPORTED_SCHEMAS = OHLCV_SCHEMAS | {"statistics", "definition"}


def _builder(schema: str):
    if schema in OHLCV_SCHEMAS:
        return ohlcv_chunk
    if schema == "statistics":
        return statistics_chunk
    return definition_chunk


def iter_decoded_chunks(
    path: str | Path,
    chunk_rows: int = 1_000_000,
    *,
    instrument_roots: Mapping[int, str] | pl.DataFrame | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[pl.DataFrame]:
    """Decode a DBN file chunk by chunk (at most ``chunk_rows`` records each) into polars frames.

    Output columns by schema (see the package docstring for units):

    * ohlcv-1s/1m/1h/1d: ts_event, trade_date, [date (ohlcv-1d only: UTC bar date)], symbol, series,
      raw_symbol (always NULL here: definitions fill it), instrument_id, open, high, low, close,
      volume, is_spread ('-' or ':' in the series), publisher_id.
    * statistics: trade_date (from ts_ref, falling back to ts_event when ts_ref is UNDEF), symbol,
      series, instrument_id, stat_type, price, quantity (NULL when UNDEF), stat_flags, ts_event,
      ts_recv, ts_ref, update_action (1 add, 2 delete), sequence, publisher_id.
    * definition: instrument_id, valid_date (UTC date of ts_recv), raw_symbol, root (asset, else
      from raw_symbol), instrument_class (one char: F future, S future spread, ...), expiration,
      min_price_increment, series (NULL when unmapped), is_spread, asset, group, exchange,
      security_type, cfi, currency, unit_of_measure, unit_of_measure_qty, display_factor,
      activation, leg_count, security_update_action, ts_event, ts_recv, publisher_id.

    ``instrument_roots`` (instrument_id -> root, or a frame with instrument_id, root) supplies roots
    for records the file's symbology cannot name (needed for ``stype_in=instrument_id`` files).
    ``stats`` is filled as chunks are produced. A truncated final record is detected only after
    the complete records before it were yielded: the iterator then raises DbnDecodeError, and the
    caller must treat the whole file as failed. Unmapped records are dropped and logged once at the
    end. A file with zero records yields one empty frame with the schema's columns.
    """
    from databento.common.error import BentoError, BentoWarning
    from databento_dbn import DBNError

    path = Path(path)
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    store, _compressed = open_store(path)
    meta = store.metadata
    schema = enum_str(meta.schema)
    if schema not in SUPPORTED_SCHEMAS:
        raise DbnDecodeError(
            f"{path}: unsupported schema {schema!r} (supported: {', '.join(sorted(SUPPORTED_SCHEMAS))})"
        )
    stats = stats if stats is not None else DecodeStats()
    stats.path, stats.schema = path, schema
    mapping, bad_series = mapping_frame(meta.mappings)
    if bad_series:
        logger.warning("%s: cannot parse a root from series %s; their records are dropped", path, bad_series)
        stats.unparseable_series = bad_series
    roots = roots_frame(instrument_roots)
    stype_in = enum_str(meta.stype_in)
    if schema != "definition" and mapping.height == 0 and roots is None:
        raise DbnDecodeError(
            f"{path}: no symbology in the file (stype_in={stype_in}, no mappings), so records cannot "
            "be given a root; pass instrument_roots (e.g. from definitions)"
        )
    build = _builder(schema)
    bound = record_bound(meta)
    chunk_rows = bounded_chunk_rows(chunk_rows, bound)
    produced = False
    try:
        records = iter(store.to_ndarray(count=chunk_rows))
        while True:
            # databento signals an incomplete final record with a BentoWarning: that is a truncated
            # file, so fail instead of silently loading a short one. The filter is scoped to the
            # read itself, not held across yields (it is process-global state).
            with warnings.catch_warnings():
                warnings.simplefilter("error", BentoWarning)
                arr = next(records, None)
            if arr is None:
                break
            if len(arr) == 0:
                continue
            stats.records_read += len(arr)
            if bound is not None and stats.records_read > bound:
                raise DbnDecodeError(
                    f"{path}: more than {bound:,} records, the most its header allows ({schema}, "
                    f"{meta.start}..{meta.end} ns, {len(meta.symbols or [])} symbol(s)); refused as a "
                    "decompression bomb or a corrupt header"
                )
            df = build(arr, schema, mapping, roots, stats)
            stats.rows_out += df.height
            produced = True
            yield df
        if not produced:
            empty = np.zeros(0, dtype=store.to_ndarray().dtype)
            yield build(empty, schema, mapping, roots, stats)
    except BentoWarning as exc:
        raise DbnDecodeError(f"{path}: truncated DBN file ({exc})") from exc
    except DbnDecodeError:
        raise
    except (BentoError, DBNError, OSError) as exc:
        raise DbnDecodeError(f"{path}: cannot decode records ({type(exc).__name__}: {exc})") from exc
    if stats.unmapped_dropped:
        logger.warning(
            "%s: dropped %d of %d records with no symbology mapping on their date (instrument ids %s)",
            path,
            stats.unmapped_dropped,
            stats.records_read,
            stats.unmapped_instrument_ids,
        )


def decode_dbn_file(
    path: str | Path,
    *,
    chunk_rows: int = 1_000_000,
    instrument_roots: Mapping[int, str] | pl.DataFrame | None = None,
    stats: DecodeStats | None = None,
) -> pl.DataFrame:
    """Decode a whole DBN file into one polars frame (columns as in :func:`iter_decoded_chunks`).

    Records keep file order. Raises DbnDecodeError naming the file on empty, truncated, non-DBN or
    unsupported-schema files. Pass a :class:`DecodeStats` to learn how many records were dropped as
    unmapped.
    """
    chunks = list(iter_decoded_chunks(path, chunk_rows, instrument_roots=instrument_roots, stats=stats))
    return chunks[0] if len(chunks) == 1 else pl.concat(chunks, how="vertical", rechunk=False)
