"""The decorator every ``features.*`` asset is declared with (one place for group, IO manager, pool)."""

import dagster as dg

from chimera_assets.features.versions import family_code_version
from chimera_assets.lib.asset_common import SINGLE_RUN, WAREHOUSE_IO, WRITER_POOL, multi_partitions
from chimera_assets.lib.asset_keys import asset_key

GROUP = "features"


def feature_asset(spec, lookback_dates: int | None = None, **kw):
    """A date x root feature asset written through the MERGE IO manager.

    ``lookback_dates`` is recorded as metadata: how many earlier trade-date partitions of its
    upstream tables the asset reads besides its own partitions.
    """
    metadata = {"chimera/lookback_trade_dates": lookback_dates or 0}
    return dg.asset(
        key=asset_key(spec),
        partitions_def=kw.pop("partitions_def", None) or multi_partitions(),
        backfill_policy=SINGLE_RUN,
        io_manager_key=WAREHOUSE_IO,
        group_name=GROUP,
        pool=WRITER_POOL,
        kinds={"polars"},
        metadata=metadata,
        code_version=family_code_version(spec.name),
        **kw,
    )
