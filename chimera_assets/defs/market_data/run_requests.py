"""Run requests shared by the landing sensor, the API sensor and the daily safety net: raw partitions
as few rectangle runs, the policy features of new trade dates, and the names of the jobs they target."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

import dagster as dg

from chimera_assets.ingest.landing import SCHEMA_TABLES
from chimera_assets.lib.asset_keys import POLICY_FEATURES, asset_key
from chimera_assets.trade_calendar import weekday_runs
from chimera_assets.universe import Universe

RAW_JOB_NAME = "chimera_raw_ingest"
POLICY_JOB_NAME = "chimera_policy_features"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

PartitionKey = tuple[date, str]


def raw_key(schema: str) -> dg.AssetKey:
    return asset_key(SCHEMA_TABLES[schema])


RAW_KEYS = tuple(raw_key(s) for s in SCHEMA_TABLES)


def partition_run_requests(
    assets_by_key: dict[PartitionKey, set[dg.AssetKey]],
    universe: Universe,
    *,
    run_key_prefix: str,
    tags: dict[str, str] | None = None,
    run_config: dict | None = None,
    job_name: str | None = None,
) -> list[dg.RunRequest]:
    """Few runs for a set of (date, root) partitions per asset: one run per asset set, block of
    consecutive dates and block of neighbouring roots (a rectangle of partitions); a single
    partition is requested by its key, a larger rectangle as a partition range."""
    dates_by: dict[tuple[frozenset, str], set[date]] = defaultdict(set)
    for (d, root), keys in assets_by_key.items():
        if keys:
            dates_by[(frozenset(keys), root)].add(d)
    roots_by: dict[tuple[frozenset, date, date], list[str]] = defaultdict(list)
    for (keys, root), ds in dates_by.items():
        for d0, d1 in weekday_runs(ds):
            roots_by[(keys, d0, d1)].append(root)
    requests = []
    for (keys, d0, d1), roots in sorted(roots_by.items(), key=lambda kv: (kv[0][1], sorted(map(str, kv[0][0])))):
        for block in universe.root_blocks(roots):
            start, end = f"{d0.isoformat()}|{block[0]}", f"{d1.isoformat()}|{block[-1]}"
            selection = sorted(keys, key=lambda k: k.to_user_string())
            names = ",".join(k.path[-1] for k in selection)
            run_tags = dict(tags or {})
            partition_key = None
            if start == end:
                partition_key = start
            else:
                run_tags.update({RANGE_START: start, RANGE_END: end})
            requests.append(
                dg.RunRequest(
                    run_key=f"{run_key_prefix}|{names}|{start}|{end}",
                    job_name=job_name,
                    asset_selection=selection,
                    partition_key=partition_key,
                    tags=run_tags,
                    run_config=run_config or {},
                )
            )
    return requests


def instance_or_none(context) -> dg.DagsterInstance | None:
    """The sensor's instance (None for a test context built without one)."""
    try:
        return context.instance
    except dg.DagsterInvariantViolationError:
        return None


def policy_run_requests(
    instance: dg.DagsterInstance | None, dates: Iterable[date], *, run_key_prefix: str, tags: dict[str, str]
) -> list[dg.RunRequest]:
    """``features.policy_features`` for the trade dates among ``dates`` that do not have it yet.

    The matrix row of (D, root) waits for the policy features of D (a date-only asset that cannot
    share the date x root runs), so a sensor that loads new trade dates asks for them at once, beside
    the raw run, instead of leaving them to a later automation tick.
    """
    done = instance.get_materialized_partitions(POLICY_FEATURES) if instance is not None else set()
    wanted = sorted({d for d in dates if d.isoformat() not in done})
    requests = []
    for d0, d1 in weekday_runs(wanted):
        run_tags = dict(tags)
        key = None
        if d0 == d1:
            key = d0.isoformat()
        else:
            run_tags.update({RANGE_START: d0.isoformat(), RANGE_END: d1.isoformat()})
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}|policy_features|{d0.isoformat()}|{d1.isoformat()}",
                job_name=POLICY_JOB_NAME, partition_key=key, tags=run_tags,
            )
        )
    return requests
