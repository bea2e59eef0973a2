"""Partitions: CME trade dates (Mon-Fri) x roots of the universe.

The date dimension is called ``date`` so keys read ``2024-01-03|ZL`` (Dagster orders dimensions by
name). Its windows are America/Chicago weekdays; ``end_offset=1`` keeps the current trade date
available, so the last key is the latest complete trade date once its session closed at 16:00 CT
(and, during a session, that session's date, which the sensors only request once data exists).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import dagster as dg

from chimera_assets.trade_calendar import weekday_dates  # noqa: F401 - the trade-date keys of a range
from chimera_assets.universe import Universe, get_universe

FIRST_TRADE_DATE = "2010-06-07"
DATE_DIM = "date"
SYMBOL_DIM = "symbol"


def trade_date_partitions(end_offset: int = 1) -> dg.TimeWindowPartitionsDefinition:
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        start=FIRST_TRADE_DATE,
        fmt="%Y-%m-%d",
        timezone="America/Chicago",
        end_offset=end_offset,
    )


def symbol_partitions(universe: Universe | None = None) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition((universe or get_universe()).root_names)


def date_symbol_partitions(universe: Universe | None = None) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {DATE_DIM: trade_date_partitions(), SYMBOL_DIM: symbol_partitions(universe)}
    )


def parse_partition_key(key: str) -> tuple[date, str | None]:
    """``"2024-01-03|ZL"`` or a MultiPartitionKey -> (date, "ZL"); ``"2024-01-03"`` -> (date, None)."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return date.fromisoformat(dims[DATE_DIM]), dims[SYMBOL_DIM]
    if "|" in key:
        d, s = key.split("|", 1)
        return date.fromisoformat(d), s
    return date.fromisoformat(key), None


def parse_partition_keys(keys: Iterable[str]) -> list[tuple[date, str | None]]:
    return [parse_partition_key(k) for k in keys]


def partition_keys_for(dates: Sequence[date], roots: Sequence[str]) -> list[str]:
    return [f"{d.isoformat()}|{r}" for d in dates for r in roots]
