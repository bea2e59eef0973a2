"""Unpartitioned reference tables: policy events and the regime calendar/weights from the YAML."""

from collections.abc import Callable, Sequence

import dagster as dg
import polars as pl

from chimera_assets.features.policy import load_policy_events
from chimera_assets.features.policy_sources import combine_policy_events, policy_files
from chimera_assets.features.regimes import Regime, build_regime_calendar, build_regime_weights, load_regimes
from chimera_assets.lib import asset_keys as keys
from chimera_assets.lib.asset_common import WAREHOUSE_IO, WRITER_POOL
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.lib.resources import PolicySource
from chimera_assets.schemas import POLICY_EVENTS, REGIME_CALENDAR, REGIME_WEIGHTS, TableSpec
from chimera_assets.settings import get_settings


@dg.asset(
    key=keys.POLICY_EVENTS,
    io_manager_key=WAREHOUSE_IO,
    group_name="reference",
    pool=WRITER_POOL,
    kinds={"polars"},
    description=(
        "Dated policy texts (social posts, executive orders, news) from the policy resource's directory "
        "(default CHIMERA_POLICY_DIR), deduplicated. "
        "A missing directory or file never deletes stored events."
    ),
)
def policy_events(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, policy: PolicySource
) -> pl.DataFrame:
    directory = policy.policy_path()
    files = policy_files(directory)
    wh = warehouse.get()
    stored = POLICY_EVENTS.empty_frame()
    if wh.table_exists(POLICY_EVENTS):
        # A table stored before a column was added (ingested_at) gains it (NULL) before the read.
        wh.ensure_table(POLICY_EVENTS)
        stored = wh.read(POLICY_EVENTS)
    if not files:
        # Sources never delete by absence (SPEC 6.2): the stored events stay and features keep using them.
        msg = (
            f"no policy event files (CHIMERA_POLICY_DIR={directory}): the {stored.height} stored policy "
            "event(s) are kept unchanged"
        )
        context.log.warning(msg)
        context.add_output_metadata({
            "policy_source": "none: stored events kept",
            "policy_dir": str(directory),
            "events_kept": stored.height,
            "files_read": 0,
        })
        return stored.select(POLICY_EVENTS.column_names)
    loaded = load_policy_events(files).select(POLICY_EVENTS.column_names)
    names = [p.name for p in files]
    events = combine_policy_events(stored.select(POLICY_EVENTS.column_names), loaded, names)
    kept_from = sorted(set(stored["ingested_from"].drop_nulls().to_list()) - set(names))
    context.log.info(
        f"{loaded.height} policy event(s) from {len(files)} file(s); "
        f"{events.height - loaded.height} stored event(s) of file(s) not present kept: {kept_from[:10]}"
    )
    context.add_output_metadata({
        "policy_source": "files",
        "policy_dir": str(directory),
        "files_read": dg.MetadataValue.json(names),
        "events_loaded": loaded.height,
        "events_kept_from_absent_files": events.height - loaded.height,
        "absent_files_kept": dg.MetadataValue.json(kept_from[:50]),
    })
    return events.select(POLICY_EVENTS.column_names)


def _regime_table(
    key: dg.AssetKey, spec: TableSpec, build: Callable[[Sequence[Regime]], pl.DataFrame], description: str
) -> dg.AssetsDefinition:
    """A training table rebuilt from the regimes YAML on every run (both regime tables are this shape)."""

    @dg.asset(
        key=key,
        io_manager_key=WAREHOUSE_IO,
        group_name="training",
        pool=WRITER_POOL,
        kinds={"polars"},
        description=description,
    )
    def _table() -> pl.DataFrame:
        return build(load_regimes(get_settings().regimes_path)).select(spec.column_names)

    return _table


regime_weights = _regime_table(
    keys.REGIME_WEIGHTS, REGIME_WEIGHTS, build_regime_weights,
    "Regime weights from the regimes YAML (baseline = 100).",
)
regime_calendar = _regime_table(
    keys.REGIME_CALENDAR, REGIME_CALENDAR, build_regime_calendar,
    "One row per calendar day with its regime (baseline outside every regime).",
)


REFERENCE_ASSETS = [policy_events, regime_weights, regime_calendar]
