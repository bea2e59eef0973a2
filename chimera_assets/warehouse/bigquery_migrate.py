"""``chimera bigquery migrate-partitioning``: move existing tables to the spec's partition grain.

Tables created before the MONTH grain are DAY-partitioned (a 15-year history is ~4,000 day partitions,
BigQuery's limit per job). BigQuery cannot change a table's partitioning in place, so each such table is:

1. copied into ``<table>__month`` (created from the spec: MONTH partitions, clustering, partition
   filter) with ONE ``INSERT ... SELECT`` (modifies one partition per month: ~200 for 2010-2026);
2. verified: the row count per month of the copy equals the original's (else the copy is dropped and
   the original is left untouched);
3. swapped: ``ALTER TABLE <table> RENAME TO <table>__day_<stamp>`` (kept as a backup), then
   ``ALTER TABLE <table>__month RENAME TO <table>``.

Tables whose grain is right but whose clustering or partition filter differ are updated in place
(metadata only, free). Without ``--apply`` nothing is changed: the plan is printed with each table's
size (the bytes the copy will scan). Pause writers (sensors, schedules, runs) while applying: a write
between the copy and the swap would be lost with the backup.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from chimera_assets.schemas import ALL_TABLES, TableSpec, check_identifier, training_table
from chimera_assets.warehouse.base import WarehouseError
from chimera_assets.warehouse.bigquery_backend import ALL_DATES_FROM, BigQueryWarehouse
from chimera_assets.warehouse.merge_sql import BIGQUERY

REBUILD, UPDATE, OK, ABSENT = "rebuild", "update", "ok", "absent"


@dataclass
class TablePlan:
    spec: TableSpec
    action: str
    current: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)
    num_rows: int = 0
    num_bytes: int = 0
    result: str = ""

    def describe(self) -> str:
        line = f"{self.spec.fqn:48s} {self.action:8s}"
        if self.action in (REBUILD, UPDATE):
            line += f" {self.current} -> {self.target}"
        if self.action == REBUILD:
            line += f" ({self.num_rows} rows, {self.num_bytes / 1e6:.1f} MB scanned by the copy)"
        return line + (f"  {self.result}" if self.result else "")


def date_partitioned_specs(roots: Sequence[str]) -> list[TableSpec]:
    """Every table partitioned on a date: the fixed tables and the training table of each root."""
    specs = [s for s in ALL_TABLES.values() if s.date_column]
    return specs + [training_table(r) for r in roots]


def _layout(table) -> dict:
    tp = table.time_partitioning
    return {
        "partitioning": f"{tp.type_}({tp.field})" if tp else None,
        "clustering": list(table.clustering_fields or []),
        "require_partition_filter": bool(table.require_partition_filter),
    }


def _target_layout(wh: BigQueryWarehouse, spec: TableSpec) -> dict:
    return {
        "partitioning": f"{spec.partition_granularity}({spec.date_column})",
        "clustering": list(spec.bigquery_clustering),
        "require_partition_filter": wh.requires_partition_filter(spec),
    }


def plan_migration(wh: BigQueryWarehouse, specs: Sequence[TableSpec]) -> list[TablePlan]:
    """What each table needs (nothing is changed)."""
    from google.api_core.exceptions import NotFound

    plans = []
    with wh.session():
        for spec in specs:
            with wh._errors("look up", spec):
                try:
                    table = wh.client.get_table(wh.table_id(spec))
                except NotFound:
                    plans.append(TablePlan(spec, ABSENT))
                    continue
            current, target = _layout(table), _target_layout(wh, spec)
            tp = table.time_partitioning
            if tp is None or tp.field != spec.date_column:
                raise WarehouseError(
                    f"BigQuery table {spec.fqn} is partitioned on {tp.field if tp else None!r}, the spec says "
                    f"{spec.date_column!r}: not migratable by copy; drop and rematerialize it"
                )
            if current == target:
                action = OK
            elif tp.type_ != spec.partition_granularity:
                action = REBUILD
            else:
                action = UPDATE
            plans.append(TablePlan(spec, action, current, target, int(table.num_rows or 0), int(table.num_bytes or 0)))
    return plans


def _month_counts(wh: BigQueryWarehouse, spec: TableSpec, name: str) -> dict:
    col = BIGQUERY.quote(spec.date_column)
    sql = (
        f"SELECT FORMAT_DATE('%Y%m', t.{col}) AS month, COUNT(*) AS n FROM {wh._sql_name(spec, name)} AS t "  # noqa: S608 - names from the spec
        f"WHERE t.{col} >= @all_from GROUP BY month"
    )
    _, rows = wh.run_query(sql, [("all_from", ALL_DATES_FROM)], spec, "migrate_verify")
    return {r[0]: int(r[1]) for r in rows}


def _rename(wh: BigQueryWarehouse, spec: TableSpec, old: str, new: str) -> None:
    sql = f"ALTER TABLE {wh._sql_name(spec, old)} RENAME TO {BIGQUERY.quote(new)}"
    wh.run_query(sql, [], spec, "migrate_swap")


def _rebuild(wh: BigQueryWarehouse, plan: TablePlan, stamp: str) -> str:
    spec = plan.spec
    copy, backup = check_identifier(f"{spec.name}__month"), check_identifier(f"{spec.name}__day_{stamp}")
    existing = wh.client.get_table(wh.table_id(spec))
    have = {f.name for f in existing.schema}
    cols = ", ".join(BIGQUERY.quote(c) for c in spec.column_names if c in have)
    wh.client.delete_table(wh.table_id(spec, copy), not_found_ok=True)  # a copy left by an interrupted run
    wh.client.create_table(wh.table_definition(spec, wh.table_id(spec, copy)))
    col = BIGQUERY.quote(spec.date_column)
    wh.run_query(
        f"INSERT INTO {wh._sql_name(spec, copy)} ({cols}) SELECT {cols} FROM {wh._sql_name(spec)} AS t "  # noqa: S608 - names from the spec
        f"WHERE t.{col} >= @all_from",
        [("all_from", ALL_DATES_FROM)], spec, "migrate_copy",
    )
    before, after = _month_counts(wh, spec, spec.name), _month_counts(wh, spec, copy)
    if before != after:
        wh.client.delete_table(wh.table_id(spec, copy), not_found_ok=True)
        diff = sorted(m for m in set(before) | set(after) if before.get(m) != after.get(m))[:5]
        raise WarehouseError(f"{spec.fqn}: the copy's row counts differ from the original in months {diff}; "
                             "original left unchanged")
    _rename(wh, spec, spec.name, backup)
    try:
        _rename(wh, spec, copy, spec.name)
    except Exception:
        _rename(wh, spec, backup, spec.name)  # put the original back
        raise
    wh._known_tables.discard(spec.fqn)
    return f"copied {sum(after.values())} rows in {len(after)} month partitions; backup {backup}"


def _update(wh: BigQueryWarehouse, plan: TablePlan) -> str:
    spec = plan.spec
    table = wh.client.get_table(wh.table_id(spec))
    table.clustering_fields = list(spec.bigquery_clustering) or None
    table.require_partition_filter = wh.requires_partition_filter(spec)
    wh.client.update_table(table, ["clustering_fields", "require_partition_filter"])
    return "clustering / partition filter updated in place"


def apply_migration(wh: BigQueryWarehouse, plans: Sequence[TablePlan], now: dt.datetime | None = None) -> None:
    """Carry out ``plans`` (each table on its own: a failure leaves that table as it was and stops)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M")
    with wh.session():
        for plan in plans:
            with wh._errors("migrate", plan.spec):
                if plan.action == REBUILD:
                    plan.result = _rebuild(wh, plan, stamp)
                elif plan.action == UPDATE:
                    plan.result = _update(wh, plan)


def add_parser(sub) -> None:
    """``chimera bigquery migrate-partitioning [--apply] [--roots ...]``."""
    bq = sub.add_parser("bigquery", help="BigQuery maintenance")
    bq_sub = bq.add_subparsers(dest="bigquery_command", required=True)
    mig = bq_sub.add_parser(
        "migrate-partitioning",
        help="move tables to the spec's partition grain (MONTH) and clustering; dry run unless --apply",
    )
    mig.add_argument("--apply", action="store_true", help="carry the plan out (default: print it only)")
    mig.add_argument("--roots", help="roots whose training tables to include (default: the universe's)")
    mig.add_argument("--max-bytes-billed", type=int, help="byte cap of each job (default: the configured one)")


def cli_main(args: argparse.Namespace) -> int:
    from chimera_assets.settings import SettingsError, get_settings
    from chimera_assets.universe import UniverseConfigError, get_universe

    try:
        settings = get_settings()
        roots = [r for r in (args.roots or "").split(",") if r.strip()] or get_universe().root_names
    except (SettingsError, UniverseConfigError) as exc:
        print(f"chimera: error: {exc}", file=sys.stderr)
        return 2
    if settings.warehouse != "bigquery":
        print("chimera: error: set CHIMERA_WAREHOUSE=bigquery (and the CHIMERA_BQ_* settings)", file=sys.stderr)
        return 2
    kwargs = {"maximum_bytes_billed": args.max_bytes_billed} if args.max_bytes_billed else {}
    wh = BigQueryWarehouse.from_settings(settings, **kwargs)
    try:
        plans = plan_migration(wh, date_partitioned_specs(roots))
        if args.apply:
            apply_migration(wh, plans)
    except WarehouseError as exc:
        print(f"chimera: error: {exc}", file=sys.stderr)
        return 1
    finally:
        wh.close()
    print(f"{'applied' if args.apply else 'dry run (nothing changed; --apply to migrate)'}: {wh!r}")
    for plan in plans:
        print("  " + plan.describe())
    return 0
