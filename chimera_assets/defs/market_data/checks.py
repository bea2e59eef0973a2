"""WARN check ``source_files_present`` on every raw table: rows whose source files are gone.

Loads never delete rows (a missing or shorter source never shrinks a partition), so rows loaded from
a file that was later deleted or replaced stay. This check lists them (rows, partitions, examples
with the reason) while they exist; ``chimera prune`` shows and, with ``--apply``, removes them.
It reads metadata only: the raw tables' (partition, load_id) counts, the ledger and the sha256 of
the files present (landing directory and API cache).
"""

import dagster as dg

from chimera_assets.ingest import ledger
from chimera_assets.ingest.landing import SCHEMA_TABLES
from chimera_assets.ingest.prune import present_sha256s, recorded_source_dirs, stale_partitions, table_groups
from chimera_assets.lib.asset_keys import asset_key
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.lib.resources import DatabentoSource
from chimera_assets.universe import get_universe

CHECK_NAME = "source_files_present"


def source_files_results(wh, databento: DatabentoSource, schemas: list[str]):
    """The ``source_files_present`` result of each raw table of ``schemas`` (also yielded by the raw
    asset itself in a run where Dagster skips this check's step: ``inline_checks.py``)."""
    universe = get_universe()
    led = ledger.read_ledger(wh)
    # Also the folders the loads read from (``chimera run --landing-dir X``): a file still there is present.
    present = present_sha256s(recorded_source_dirs(wh, [databento.landing_path(), databento.api_cache_path()]))
    for schema in schemas:
        spec = SCHEMA_TABLES[schema]
        key = asset_key(spec)
        stale = (stale_partitions(table_groups(wh, schema), led, present, schema, universe)
                 if wh.table_exists(spec) else None)
        if stale is None or stale.is_empty():
            yield dg.AssetCheckResult(asset_key=key, check_name=CHECK_NAME, passed=True,
                                      severity=dg.AssetCheckSeverity.WARN, metadata={"stale_rows": 0})
            continue
        parts = stale.select("d", "r").unique().sort("d", "r")
        examples = [f"{d.isoformat()}|{r}: {n} row(s), {why}" for d, r, _, n, why in stale.head(10).rows()]
        yield dg.AssetCheckResult(
            asset_key=key, check_name=CHECK_NAME, passed=False, severity=dg.AssetCheckSeverity.WARN,
            description=f"{int(stale['rows'].sum())} row(s) in {parts.height} partition(s) of {spec.fqn} come "
                        "from source files that are gone; `chimera prune` lists them, `--apply` removes them",
            metadata={
                "stale_rows": int(stale["rows"].sum()),
                "stale_partitions": parts.height,
                "examples": dg.MetadataValue.json(examples),
            },
        )


def stale_source_checks() -> list[dg.AssetChecksDefinition]:
    specs = [
        dg.AssetCheckSpec(CHECK_NAME, asset=asset_key(SCHEMA_TABLES[s]), blocking=False,
                          description="WARN while raw rows remain whose source files are gone (chimera prune)")
        for s in SCHEMA_TABLES
    ]
    schema_of = {asset_key(SCHEMA_TABLES[s]): s for s in SCHEMA_TABLES}

    @dg.multi_asset_check(name="raw_source_files_present", specs=specs, can_subset=True)
    def _check(context: dg.AssetCheckExecutionContext, databento: DatabentoSource, warehouse: WarehouseResource):
        wh = warehouse.get()
        keys = sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string())
        yield from source_files_results(wh, databento, [schema_of[ck.asset_key] for ck in keys])

    return [_check]
