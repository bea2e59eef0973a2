"""Helpers to run parts of the real asset graph in-process in tests."""

from __future__ import annotations

import dagster as dg

from chimera_assets.definitions import build_definitions

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def asset_key(fqn: str) -> dg.AssetKey:
    return dg.AssetKey(fqn.split("."))


def run_range(
    keys: list[str] | set[dg.AssetKey],
    start: str,
    end: str,
    first_root: str,
    last_root: str | None = None,
    defs: dg.Definitions | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize ``keys`` (``schema.table`` names or AssetKeys) over [start, end] x roots in ONE run."""
    defs = defs or build_definitions()
    selection = {asset_key(k) if isinstance(k, str) else k for k in keys}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=selection)
    tags = {
        "dagster/asset_partition_range_start": f"{start}|{first_root}",
        "dagster/asset_partition_range_end": f"{end}|{last_root or first_root}",
    }
    return job.execute_in_process(
        tags=tags, instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=raise_on_error,
        run_config=QUIET,
    )


def run_unpartitioned(keys: list[str], defs: dg.Definitions | None = None) -> dg.ExecuteInProcessResult:
    defs = defs or build_definitions()
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={asset_key(k) for k in keys})
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), run_config=QUIET)
