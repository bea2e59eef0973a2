"""Shared pieces of the asset definitions: partition mappings for lookbacks, key filters, policies."""

import dagster as dg
import polars as pl

from chimera_assets.partitions import DATE_DIM, SYMBOL_DIM, date_symbol_partitions, parse_partition_keys

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
