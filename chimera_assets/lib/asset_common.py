"""Shared pieces of the asset definitions: partition mappings for lookbacks, key filters, policies."""

from datetime import date

import dagster as dg
import polars as pl

from chimera_assets.lib.partitions import DATE_DIM, SYMBOL_DIM, date_symbol_partitions, parse_partition_keys
from chimera_assets.schemas import TableSpec
from chimera_assets.trade_calendar import first_owned_day
from chimera_assets.warehouse.base import Slice, Warehouse

SINGLE_RUN = dg.BackfillPolicy.single_run()
WAREHOUSE_IO = "warehouse_io"
WRITER_POOL = "warehouse_writer"


def lookback(weekdays: int) -> dg.MultiPartitionMapping:
    """Map partition (D, root) to (D-weekdays .. D, root): the history a feature needs.

    Counted in trade-date partitions (Mon-Fri, holidays included), so ``lookback(300)`` holds at
    least ~285 sessions. Dates before the first partition are simply absent.
    """
    return dg.MultiPartitionMapping(
        {
            DATE_DIM: dg.DimensionPartitionMapping(
                DATE_DIM,
                dg.TimeWindowPartitionMapping(start_offset=-weekdays, allow_nonexistent_upstream_partitions=True),
            ),
            SYMBOL_DIM: dg.DimensionPartitionMapping(SYMBOL_DIM, dg.IdentityPartitionMapping()),
        }
    )


def lookback_slice(keys: list[tuple[date, str | None]], weekdays: int) -> Slice:
    """Per root, the trade dates from ``weekdays`` partitions before its first key to its last key."""
    by_root: dict[str | None, list[date]] = {}
    for d, r in keys:
        by_root.setdefault(r, []).append(d)
    ranges = []
    for r, ds in sorted(by_root.items(), key=lambda kv: kv[0] or ""):
        first = min(ds)
        start = (pl.Series([first]).dt.add_business_days(-weekdays, roll="forward")[0]) if weekdays else first
        ranges.append((r, first_owned_day(start), max(ds)))
    return Slice(tuple(ranges))


def read_lookback(wh: Warehouse, spec: TableSpec, context: dg.AssetExecutionContext, weekdays: int) -> pl.DataFrame:
    """``spec``'s rows for the run's roots over its dates plus ``weekdays`` earlier trade dates.

    The lookbacks are read directly rather than through Dagster partition mappings: a 300-partition
    mapping over a 1,000-partition run costs Dagster ~30 s of bookkeeping for the same rows.
    """
    return wh.read(spec, lookback_slice(parse_partition_keys(context.partition_keys), weekdays))


def date_of_multi() -> dg.MultiToSingleDimensionPartitionMapping:
    """A date x root partition reads the date-only partition of the same date."""
    return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DATE_DIM)


def run_keys(context: dg.AssetExecutionContext) -> pl.DataFrame:
    """The run's partition keys as a frame (trade_date, symbol) for semi-joins."""
    keys = parse_partition_keys(context.partition_keys)
    return pl.DataFrame(
        {"trade_date": [d for d, _ in keys], "symbol": [s for _, s in keys]},
        schema={"trade_date": pl.Date, "symbol": pl.Utf8},
    )


def only_run_keys(frame: pl.DataFrame, keys: pl.DataFrame, date_col: str = "trade_date") -> pl.DataFrame:
    """Rows of ``frame`` whose (date, symbol) is one of the run's partitions (lookback rows dropped)."""
    k = keys.rename({"trade_date": date_col}) if date_col != "trade_date" else keys
    return frame.join(k, on=[date_col, "symbol"], how="semi")


def multi_partitions() -> dg.MultiPartitionsDefinition:
    return date_symbol_partitions()
