"""``chimera_landing_files``: new DBN files in the landing directory request their raw partitions.

One tick: list the landing files; the NEW ones (inode change time above the cursor's high-water mark,
so copies, moves and touches count) and the pending ones are candidates. A candidate is complete when
its size and mtime did not change since the previous tick, when it was renamed into place (its hidden
``.<name>.partial`` was there at the previous tick, or its mtime is older than the previous tick), or
when it is older than ``CHIMERA_LANDING_SETTLE_S``. Complete files are decoded for their record
coverage, and the partitions they cover are planned with the same planner the raw assets use
(:func:`chimera_assets.ingest.plan.plan_loads`, against every complete landing file, the ledger and the
tables' load_ids): only partitions the plan loads are requested. So a file that was first loaded
for a few of its dates or roots has the rest requested; a file whose partitions are all loaded is
recorded ``skipped_unchanged`` once; a tick that requests nothing says why (the plan's summary).

The cursor is compact: the high-water mark, the previous tick's time, the files still pending
(path -> size, mtime), the hidden partial downloads of the previous tick and the content hashes
requested and not yet seen loaded (so a copy or a touch of a file whose run is queued is not
requested twice). It never lists every file ever seen.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.defs.market_data.run_requests import (
    RAW_JOB_NAME,
    instance_or_none,
    partition_run_requests,
    policy_run_requests,
    raw_key,
)
from chimera_assets.ingest import ledger
from chimera_assets.ingest.coverage import FileCoverage, file_coverage
from chimera_assets.ingest.execute import root_of_series, table_state
from chimera_assets.ingest.landing import SCHEMA_TABLES, display_path, list_dbn_files
from chimera_assets.ingest.plan import Plan, known_load_ids, loaded_rects, plan_loads, table_load_ids
from chimera_assets.lib.automation.sensor import last_partition_date
from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.lib.resources import DatabentoSource
from chimera_assets.settings import landing_settle_s, sensor_interval_s
from chimera_assets.universe import Universe, get_universe

LANDING_SENSOR_NAME = "chimera_landing_files"
DEFAULT_LANDING_INTERVAL_S = 60
#: A requested content hash is forgotten after this long even if no load was seen (a failed run).
INFLIGHT_TTL_NS = 24 * 3600 * 10**9

PartitionKey = tuple[date, str]


@dataclass
class LandingCursor:
    hwm_ns: int = 0
    tick_ns: int | None = None
    pending: dict[str, list[int]] = field(default_factory=dict)
    partials: list[str] = field(default_factory=list)
    inflight: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> LandingCursor:
        if not raw:
            return cls()
        d = json.loads(raw)
        if "hwm_ns" not in d:  # a cursor of the former layout (every file seen): start afresh
            return cls()
        return cls(int(d["hwm_ns"]), d.get("tick_ns"), dict(d.get("pending", {})), list(d.get("partials", [])),
                   dict(d.get("inflight", {})))

    def dumps(self) -> str:
        return json.dumps({"hwm_ns": self.hwm_ns, "tick_ns": self.tick_ns, "pending": self.pending,
                           "partials": self.partials, "inflight": self.inflight}, sort_keys=True)


@dataclass
class LandingTick:
    cursor: LandingCursor
    new: list[FileCoverage] = field(default_factory=list)
    waiting: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    unchanged: list[FileCoverage] = field(default_factory=list)

    def assets_by_partition(self) -> dict[PartitionKey, set[dg.AssetKey]]:

        out: dict[PartitionKey, set[dg.AssetKey]] = defaultdict(set)
        for schema, plan in self.plans.items():
            for k in plan.load:
                out[k].add(raw_key(schema))
        return dict(out)

    def requested_files(self) -> list[FileCoverage]:
        load = {(s, k) for s, p in self.plans.items() for k in p.load}
        return [f for f in self.new if any((f.schema, k) in load for k in f.partitions)]


def _partial_files(landing_dir: Path) -> list[str]:
    """Hidden ``.<name>.partial`` files: the project's writers download into them, then rename."""
    return sorted(str(p) for p in landing_dir.rglob(".*.partial") if p.is_file())


def scan_landing(
    landing_dir: Path, cursor: LandingCursor, universe: Universe, read_ledger: Callable[[], pl.DataFrame],
    table_rows: Callable[[str, list], pl.DataFrame], *, now: datetime | None = None, settle_s: float | None = None,
) -> LandingTick:
    """One tick (pure except for reading files). ``read_ledger()`` and ``table_rows(schema, keys)``
    (the table's (d, r, load_id) in those partitions) are called only when complete new files need them."""
    now = now or datetime.now(UTC)
    settle_s = landing_settle_s() if settle_s is None else settle_s
    last_date = last_partition_date(now)
    new = LandingCursor(hwm_ns=cursor.hwm_ns, tick_ns=int(now.timestamp() * 1e9),
                        partials=_partial_files(landing_dir) if landing_dir.exists() else [],
                        inflight={s: t for s, t in cursor.inflight.items()
                                  if int(now.timestamp() * 1e9) - t < INFLIGHT_TTL_NS})
    tick = LandingTick(cursor=new)
    complete: list[Path] = []
    listed = list_dbn_files(landing_dir)
    for path in listed:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        key, stat = str(path), [st.st_size, st.st_mtime_ns]
        if st.st_ctime_ns <= cursor.hwm_ns and key not in cursor.pending:
            continue  # handled at an earlier tick
        renamed = str(path.parent / f".{path.name}.partial") in cursor.partials or (
            cursor.tick_ns is not None and st.st_mtime_ns < cursor.tick_ns and key not in cursor.pending)
        old = settle_s > 0 and (now.timestamp() - st.st_mtime_ns / 1e9) >= settle_s
        if st.st_size == 0 or not (cursor.pending.get(key) == stat or renamed or old):
            new.pending[key] = stat  # first sight, or still growing: wait for a stable tick
            tick.waiting.append(path)
            continue
        new.hwm_ns = max(new.hwm_ns, st.st_ctime_ns)
        complete.append(path)
    covs = []
    for path in complete:
        try:
            covs.append(file_coverage(path, universe))
        except (DbnDecodeError, OSError) as exc:
            tick.skipped.append((path, f"not loadable: {exc}"))
    led = None
    if any(c.sha256 in new.inflight for c in covs):
        # A requested content whose load the ledger now shows is no longer in flight: plan it again.
        led = read_ledger()
        loaded = set(led.filter(pl.col("status") == "loaded")["content_sha256"].drop_nulls().to_list())
        new.inflight = {s: t for s, t in new.inflight.items() if s not in loaded}
    for cov in covs:
        path = cov.path
        if cov.sha256 in new.inflight:
            tick.skipped.append((path, "same content as a file already requested"))
            continue
        if not cov.partitions:
            tick.skipped.append((path, f"no records of the universe's series ({cov.info.symbols[:5]})"))
            continue
        tick.new.append(cov)
    by_schema: dict[str, set[PartitionKey]] = defaultdict(set)
    for f in tick.new:
        by_schema[f.schema].update(k for k in f.partitions if k[0] <= last_date)
    for schema, keys in by_schema.items():
        # Every complete landing file of the schema takes part (a partition is loaded from all files
        # covering it); pending files do not (they may still be growing).
        others = []
        for p in listed:
            if str(p) in new.pending:
                continue
            try:
                c = file_coverage(p, universe)
            except (DbnDecodeError, OSError):
                continue
            if c.schema == schema and c.partitions & keys:
                others.append(c)
        led = led if led is not None else read_ledger()
        rows = table_rows(schema, sorted(keys))
        tick.plans[schema] = plan_loads(keys, others, loaded_rects(led, schema, root_of_series(universe)),
                                        table_load_ids(rows), known_load_ids(led))
        loaded = {s for s in led.filter(pl.col("status") == "loaded")["content_sha256"].drop_nulls().to_list()}
        new.inflight = {s: t for s, t in new.inflight.items() if s not in loaded}
    new_paths = {f.path for f in tick.new}
    tick.unchanged = [f for p in tick.plans.values() for f in p.unchanged if f.path in new_paths]
    for f in tick.requested_files():
        new.inflight[f.sha256] = new.tick_ns or 0
    return tick


def unchanged_ledger_rows(files: list[FileCoverage]) -> list[dict]:
    now = ledger.now_utc()
    return [
        dict(source_kind="file", dataset=f.info.dataset, schema=f.schema, file_path=str(f.path),
             content_sha256=f.sha256, dbn_version=f.info.dbn_version, record_count=f.records,
             first_ts_event=f.first_ts, last_ts_event=f.last_ts, status="skipped_unchanged",
             error="every partition it covers is already loaded from this content (sha256)",
             started_at=now, finished_at=now)
        for f in files
    ]


def landing_run_requests(tick: LandingTick, universe: Universe, instance: dg.DagsterInstance | None = None):
    """The raw runs of the planned partitions, plus the policy features their new dates lack."""

    wanted = tick.assets_by_partition()
    if not wanted:
        return []
    files = tick.requested_files()
    digest = hashlib.sha256("".join(sorted(f.sha256 for f in files)).encode()).hexdigest()[:16]
    names = ", ".join(sorted(f.path.name for f in files))
    tags = {"chimera/trigger": LANDING_SENSOR_NAME, "chimera/files": names[:900]}
    raw = partition_run_requests(wanted, universe, run_key_prefix=f"landing|{digest}", tags=tags,
                                 job_name=RAW_JOB_NAME)
    return raw + policy_run_requests(instance, {d for d, _ in wanted}, run_key_prefix=f"landing|{digest}", tags=tags)


def landing_sensor_factory(jobs, minimum_interval_seconds: int | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name=LANDING_SENSOR_NAME,
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds or sensor_interval_s(DEFAULT_LANDING_INTERVAL_S),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Plans the raw partitions of complete new DBN files in the landing directory (the raw assets' "
            "planner: only partitions not yet loaded from the same content) and requests them."
        ),
    )
    def chimera_landing_files(
        context: dg.SensorEvaluationContext, databento: DatabentoSource, warehouse: WarehouseResource
    ):

        landing = databento.landing_path()
        if not landing.exists():
            return dg.SkipReason(f"landing directory {landing} does not exist (set CHIMERA_LANDING_DIR)")
        universe = get_universe()
        wh = None

        def get_wh():
            nonlocal wh
            wh = wh or warehouse.get()
            return wh

        tick = scan_landing(landing, LandingCursor.parse(context.cursor), universe,
                            lambda: ledger.read_ledger(get_wh()),
                            lambda schema, keys: table_state(get_wh(), SCHEMA_TABLES[schema], keys))
        for path, reason in tick.skipped:
            context.log.warning(f"landing: skipped {display_path(path.name)}: {reason}")
        if tick.unchanged:
            ledger.record(wh or warehouse.get(), unchanged_ledger_rows(tick.unchanged))
        requests = landing_run_requests(tick, universe, instance_or_none(context))
        for schema, plan in tick.plans.items():
            context.log.info(f"landing: {schema}: {plan.summary()}")
        if requests:
            n = sum(len(v) for v in tick.assets_by_partition().values())
            context.log.info(f"landing: requesting {n} raw partition(s) of {[raw_key(s).path[-1] for s in tick.plans]}")
            return dg.SensorResult(run_requests=requests, cursor=tick.cursor.dumps())
        parts = []
        for schema, plan in tick.plans.items():
            parts.append(f"{schema}: nothing to load ({plan.summary()})")
        if tick.unchanged:
            parts.append(f"{len(tick.unchanged)} already-loaded file(s) recorded skipped_unchanged: "
                         f"{', '.join(f.path.name for f in tick.unchanged[:5])}")
        if tick.waiting:
            parts.append(f"{len(tick.waiting)} file(s) not complete yet: {', '.join(display_path(p.name) for p in tick.waiting[:5])}")
        if tick.skipped:
            parts.append(f"{len(tick.skipped)} file(s) skipped: " + "; ".join(
                f"{display_path(p.name)} ({why[:200]})" for p, why in tick.skipped[:3]))
        reason = "no new complete DBN files in " + str(landing) + ("; " + "; ".join(parts) if parts else "")
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=tick.cursor.dumps())

    return chimera_landing_files
