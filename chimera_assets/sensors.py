"""Sensors and the daily schedule: how new raw data gets requested without anyone clicking.

* ``chimera_landing_files`` watches the landing directory. Its cursor remembers every file it has
  handled (path, size, mtime_ns, sha256) and the files seen once but not yet complete. A file is
  registered only when complete: its size and mtime are unchanged since the previous tick (writers
  that rename a hidden temporary file into place are complete at once: hidden and partial names are
  never listed) and its DBN header reads. A registered file requests runs of its raw asset for
  exactly the (trade date, root) partitions it touches that the landing files now cover
  completely; a file whose sha256 the load ledger already has as ``loaded`` is recorded as
  ``skipped_unchanged`` and requests nothing; the same content is never requested twice.
* ``chimera_databento_availability`` asks ``metadata.get_dataset_range`` (with a key in
  ``DATABENTO_API_KEY``) which trade dates became complete since its cursor and requests them from
  the API for the configured roots; without a key every tick is skipped with the reason.
* ``chimera_daily_safety_net`` (18:30 America/Chicago, Mon-Fri) re-requests, for the last few trade
  dates, raw partitions that are available but were never materialized and the date x root chain
  of any session whose matrix partition is missing.

Downstream assets then update by declarative automation (``chimera_assets/automation.py``).
Tick intervals come from ``CHIMERA_SENSOR_INTERVAL_S`` when set (tests shorten them with it).
"""

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import dagster as dg

from chimera_assets.automation import (
    CONSOLIDATED,
    DAILY_ML_MATRIX,
    GOLDEN_ZONE,
    MARKET_FEATURES,
    PIVOTS,
    POLICY_FEATURES,
    RAW_BARS,
    SESSION_BARS,
    last_partition_date,
    sensor_interval_s,
)
from chimera_assets.dbn_decode import DbnDecodeError, DbnInfo
from chimera_assets.ingest import ledger
from chimera_assets.ingest.landing import (
    SCHEMA_TABLES,
    covered_keys,
    header,
    list_dbn_files,
    needed_window,
    series_roots,
)
from chimera_assets.io_manager import WarehouseResource
from chimera_assets.partitions import FIRST_TRADE_DATE
from chimera_assets.resources import DatabentoSource
from chimera_assets.universe import Universe, get_universe

LANDING_SENSOR_NAME = "chimera_landing_files"
API_SENSOR_NAME = "chimera_databento_availability"
SAFETY_NET_NAME = "chimera_daily_safety_net"
RAW_JOB_NAME = "chimera_raw_ingest"
REFRESH_JOB_NAME = "chimera_session_refresh"
POLICY_JOB_NAME = "chimera_policy_features"
SAFETY_NET_CRON = "30 18 * * 1-5"
CHICAGO = "America/Chicago"
DEFAULT_LANDING_INTERVAL_S = 60
DEFAULT_API_INTERVAL_S = 900
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
API_RUN_CONFIG = {"resources": {"databento": {"config": {"mode": "api"}}}}
DOWNSTREAM_MULTI = (SESSION_BARS, MARKET_FEATURES, PIVOTS, GOLDEN_ZONE, CONSOLIDATED, DAILY_ML_MATRIX)

PartitionKey = tuple[date, str]


def raw_key(schema: str) -> dg.AssetKey:
    spec = SCHEMA_TABLES[schema]
    return dg.AssetKey([spec.schema, spec.name])


RAW_KEYS = tuple(raw_key(s) for s in SCHEMA_TABLES)


# --------------------------------------------------------------------------------------------------
# Partition helpers
# --------------------------------------------------------------------------------------------------


def _weekdays(lo: date, hi: date) -> list[date]:
    out, d = [], lo
    while d <= hi:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def _next_weekday(d: date) -> date:
    d += timedelta(days=1)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def touched_dates(schema: str, info: DbnInfo, last_date: date) -> list[date]:
    """Trade dates (partitions) whose records of ``schema`` can lie in the file's [start, end)."""
    first = date.fromisoformat(FIRST_TRADE_DATE)
    start = info.start or datetime.combine(first, time(), UTC)
    end = info.end or datetime.combine(last_date + timedelta(days=3), time(), UTC)
    lo = max(first, start.date() - timedelta(days=1))
    hi = min(last_date, end.date() + timedelta(days=2))
    out = []
    for d in _weekdays(lo, hi):
        w0, w1 = needed_window(schema, d)
        if w0 < end and start < w1:
            out.append(d)
    return out


def file_roots(info: DbnInfo, universe: Universe) -> set[str]:
    return set(universe.roots) if info.stype_in == "instrument_id" else series_roots(info, universe)


def _blocks(dates: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive trade-date partitions (Mon-Fri, holidays included) grouped into [first, last]."""
    out: list[list[date]] = []
    for d in sorted(set(dates)):
        if out and _next_weekday(out[-1][1]) == d:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a, b) for a, b in out]


def _root_blocks(roots: Iterable[str], order: Sequence[str]) -> list[list[str]]:
    """Roots grouped into neighbours in universe order (a partition range is a rectangle)."""
    idx = sorted(order.index(r) for r in set(roots))
    out: list[list[int]] = []
    for i in idx:
        if out and i == out[-1][-1] + 1:
            out[-1].append(i)
        else:
            out.append([i])
    return [[order[i] for i in b] for b in out]


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
        for d0, d1 in _blocks(ds):
            roots_by[(keys, d0, d1)].append(root)
    order = universe.root_names
    requests = []
    for (keys, d0, d1), roots in sorted(roots_by.items(), key=lambda kv: (kv[0][1], sorted(map(str, kv[0][0])))):
        for block in _root_blocks(roots, order):
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


def _instance_or_none(context) -> dg.DagsterInstance | None:
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
    for d0, d1 in _blocks(wanted):
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


# --------------------------------------------------------------------------------------------------
# Landing directory
# --------------------------------------------------------------------------------------------------


@dataclass
class LandingCursor:
    """``seen``: path -> [size, mtime_ns, sha256 or "", note]; ``pending``: path -> [size, mtime_ns];
    ``partials``: hidden ``.<name>.partial`` files present at the previous tick; ``tick_ns``: its time."""

    seen: dict[str, list] = field(default_factory=dict)
    pending: dict[str, list] = field(default_factory=dict)
    partials: list[str] = field(default_factory=list)
    tick_ns: int | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "LandingCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            seen=dict(data.get("seen", {})), pending=dict(data.get("pending", {})),
            partials=list(data.get("partials", [])), tick_ns=data.get("tick_ns"),
        )

    def dumps(self) -> str:
        return json.dumps(
            {"seen": self.seen, "pending": self.pending, "partials": self.partials, "tick_ns": self.tick_ns},
            sort_keys=True,
        )

    def requested_shas(self) -> set[str]:
        return {v[2] for v in self.seen.values() if v[2] and v[3] == "requested"}


def _partial_files(landing_dir: Path) -> list[str]:
    """Hidden ``.<name>.partial`` files: the project's writers (``write_demo_files``,
    ``DatabentoApi.fetch_range``) download into them and rename them to ``<name>`` when complete."""
    return sorted(str(p) for p in landing_dir.rglob(".*.partial") if p.is_file())


def _renamed_into_place(path: Path, mtime_ns: int, cursor: LandingCursor) -> bool:
    """True when ``path`` appeared by a rename of a complete file since the previous tick: its hidden
    ``.<name>.partial`` was there at the previous tick, or (a move keeps the mtime) it was last
    written before the previous tick although it was not listed then."""
    if str(path.parent / f".{path.name}.partial") in cursor.partials:
        return True
    listed_before = str(path) in cursor.pending or str(path) in cursor.seen
    return cursor.tick_ns is not None and not listed_before and mtime_ns < cursor.tick_ns


@dataclass
class RegisteredFile:
    path: Path
    info: DbnInfo
    sha256: str
    partitions: list[PartitionKey]


@dataclass
class LandingScan:
    cursor: LandingCursor
    registered: list[RegisteredFile] = field(default_factory=list)
    unchanged: list[tuple[Path, DbnInfo, str]] = field(default_factory=list)
    waiting: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def assets_by_partition(self) -> dict[PartitionKey, set[dg.AssetKey]]:
        out: dict[PartitionKey, set[dg.AssetKey]] = defaultdict(set)
        for f in self.registered:
            for k in f.partitions:
                out[k].add(raw_key(f.info.schema))
        return dict(out)


def _settle_seconds() -> float:
    raw = os.environ.get("CHIMERA_LANDING_SETTLE_S", "").strip()
    return float(raw) if raw else 0.0


def scan_landing(
    landing_dir: Path,
    cursor: LandingCursor,
    universe: Universe,
    loaded_sha256s: Callable[[], set[str]],
    *,
    now: datetime | None = None,
    settle_s: float | None = None,
) -> LandingScan:
    """One tick over the landing directory (pure except for reading files).

    A file is complete when its size and mtime did not change since the previous tick, or when it
    was renamed into place (see ``_renamed_into_place``). ``loaded_sha256s`` is called only when a
    complete new file needs it (it reads the ledger). ``settle_s`` > 0 also accepts a file at first
    sight when its mtime is at least that old (``CHIMERA_LANDING_SETTLE_S``).
    """
    now = now or datetime.now(UTC)
    settle_s = _settle_seconds() if settle_s is None else settle_s
    last_date = last_partition_date(now)
    new = LandingCursor(partials=_partial_files(landing_dir) if landing_dir.exists() else [])
    new.tick_ns = int(now.timestamp() * 1e9)
    scan = LandingScan(cursor=new)
    complete: list[tuple[Path, DbnInfo]] = []
    fresh: list[tuple[Path, DbnInfo, list]] = []
    for path in list_dbn_files(landing_dir):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # moved away between listing and stat
        key, stat = str(path), [st.st_size, st.st_mtime_ns]
        prev = cursor.seen.get(key)
        if prev and prev[:2] == stat:
            new.seen[key] = prev
            if prev[3] in ("requested", "unchanged", "duplicate", "no_partitions"):
                try:
                    complete.append((path, header(path)))
                except DbnDecodeError:
                    pass
            continue
        old_enough = settle_s > 0 and (now.timestamp() - st.st_mtime_ns / 1e9) >= settle_s
        stable = cursor.pending.get(key) == stat or old_enough or _renamed_into_place(path, st.st_mtime_ns, cursor)
        if st.st_size == 0 or not stable:
            new.pending[key] = stat  # first sight, or still growing: wait for a stable tick
            if prev:
                new.seen[key] = prev  # keep what the previous content was (sha, status) meanwhile
            scan.waiting.append(path)
            continue
        try:
            info = header(path)
        except DbnDecodeError as exc:
            new.seen[key] = [*stat, "", "unreadable"]
            scan.skipped.append((path, f"not a readable DBN file: {exc}"))
            continue
        fresh.append((path, info, stat))
    loaded: set[str] | None = None
    requested = cursor.requested_shas()
    for path, info, stat in fresh:
        key = str(path)
        if info.schema not in SCHEMA_TABLES:
            new.seen[key] = [*stat, "", "unsupported_schema"]
            scan.skipped.append((path, f"schema {info.schema!r} has no raw table (one of {sorted(SCHEMA_TABLES)})"))
            continue
        sha = ledger.file_sha256(path)
        prev = cursor.seen.get(key)
        if prev and prev[2] == sha:  # touched or rewritten with identical bytes: nothing new
            new.seen[key] = [*stat, sha, prev[3]]
            complete.append((path, info))
            continue
        if loaded is None:
            loaded = loaded_sha256s()
        if sha in loaded:
            new.seen[key] = [*stat, sha, "unchanged"]
            scan.unchanged.append((path, info, sha))
            complete.append((path, info))
            continue
        if sha in requested:
            new.seen[key] = [*stat, sha, "duplicate"]
            scan.skipped.append((path, "same content as a file already requested"))
            complete.append((path, info))
            continue
        requested.add(sha)
        complete.append((path, info))
        new.seen[key] = [*stat, sha, "requested"]
        scan.registered.append(RegisteredFile(path, info, sha, []))
    # Partitions: those the new file touches that the complete landing files now cover, completely
    # or partly (the raw asset writes both; a partly covered edge, such as the evening session in
    # the previous month's file, is requested again when the neighbouring file lands).
    for f in scan.registered:
        schema = f.info.schema
        roots = file_roots(f.info, universe)
        keys = [(d, r) for d in touched_dates(schema, f.info, last_date) for r in sorted(roots)]
        same_schema = [(p, i) for p, i in complete if i.schema == schema]
        written = _writable(schema, same_schema, keys, universe)
        f.partitions = sorted(written)
        if not f.partitions:
            new.seen[str(f.path)][3] = "no_partitions"
            reason = (
                f"no series of the universe in {f.info.symbols[:5]}" if not roots
                else "covers no trade-date partition"
            )
            scan.skipped.append((f.path, reason))
    scan.registered = [f for f in scan.registered if f.partitions]
    return scan


def _writable(schema: str, files, keys: list[PartitionKey], universe: Universe) -> set[PartitionKey]:
    """The ``keys`` the raw asset would write from ``files``: covered completely or partly."""
    if not keys or not files:
        return set()
    covered = covered_keys(schema, files, keys, universe)
    return set(covered[0]) | (set(covered[1]) if len(covered) > 2 else set())


def unchanged_ledger_rows(unchanged: Iterable[tuple[Path, DbnInfo, str]]) -> list[dict]:
    now = ledger.now_utc()
    return [
        dict(
            source_kind="file", dataset=info.dataset, schema=info.schema, series=",".join(info.symbols[:200]),
            stype_in=info.stype_in, period_start=info.start, period_end=info.end, file_path=str(path),
            content_sha256=sha, dbn_version=info.dbn_version, status="skipped_unchanged",
            error="content already loaded (same sha256)", started_at=now, finished_at=now,
        )
        for path, info, sha in unchanged
    ]


def landing_run_requests(
    scan: LandingScan, universe: Universe, instance: dg.DagsterInstance | None = None
) -> list[dg.RunRequest]:
    """The raw runs of the newly registered files, plus the policy features their new dates lack."""
    if not scan.registered:
        return []
    digest = hashlib.sha256("".join(sorted(f.sha256 for f in scan.registered)).encode()).hexdigest()[:16]
    names = ", ".join(sorted(f.path.name for f in scan.registered))
    tags = {"chimera/trigger": LANDING_SENSOR_NAME, "chimera/files": names[:900]}
    raw = partition_run_requests(
        scan.assets_by_partition(), universe, run_key_prefix=f"landing|{digest}", tags=tags, job_name=RAW_JOB_NAME
    )
    dates = {d for f in scan.registered for d, _ in f.partitions}
    return raw + policy_run_requests(instance, dates, run_key_prefix=f"landing|{digest}", tags=tags)


def landing_sensor_factory(jobs: Sequence, minimum_interval_seconds: int | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name=LANDING_SENSOR_NAME,
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds or sensor_interval_s(DEFAULT_LANDING_INTERVAL_S),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Registers complete new DBN files in the landing directory and requests their raw "
            "partitions; already-loaded content is recorded as skipped_unchanged."
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

        def loaded() -> set[str]:
            nonlocal wh
            wh = wh or warehouse.get()
            return ledger.loaded_sha256s(wh)

        scan = scan_landing(landing, LandingCursor.parse(context.cursor), universe, loaded)
        for path, reason in scan.skipped:
            context.log.warning(f"landing: skipped {path.name}: {reason}")
        if scan.unchanged:
            ledger.record(wh or warehouse.get(), unchanged_ledger_rows(scan.unchanged))
            for path, _, _ in scan.unchanged:
                context.log.info(f"landing: {path.name} already loaded (same sha256): recorded skipped_unchanged")
        requests = landing_run_requests(scan, universe, _instance_or_none(context))
        for f in scan.registered:
            ds = sorted({d for d, _ in f.partitions})
            context.log.info(
                f"landing: registered {f.path.name} ({f.info.schema}): {len(f.partitions)} partition(s) "
                f"{ds[0]}..{ds[-1]} x {','.join(sorted({r for _, r in f.partitions}))}"
            )
        if requests:
            return dg.SensorResult(run_requests=requests, cursor=scan.cursor.dumps())
        parts = []
        if scan.waiting:
            parts.append(f"{len(scan.waiting)} file(s) not complete yet: {', '.join(p.name for p in scan.waiting[:5])}")
        if scan.unchanged:
            parts.append(f"{len(scan.unchanged)} already-loaded file(s) recorded skipped_unchanged")
        if scan.skipped:
            parts.append(f"{len(scan.skipped)} file(s) skipped (see the tick log)")
        reason = "no new complete DBN files in " + str(landing) + ("; " + "; ".join(parts) if parts else "")
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=scan.cursor.dumps())

    return chimera_landing_files


# --------------------------------------------------------------------------------------------------
# Databento API availability
# --------------------------------------------------------------------------------------------------


def api_roots(universe: Universe) -> list[str]:
    """``CHIMERA_API_ROOTS`` (comma list) or every root of the universe."""
    raw = os.environ.get("CHIMERA_API_ROOTS", "").strip()
    return universe.require_roots(raw.split(",")) if raw else universe.root_names


def last_complete_trade_date(schema: str, available_end: datetime, last_date: date) -> date | None:
    """The newest trade date whose whole ``schema`` window ends at or before ``available_end``."""
    d = min(last_date, available_end.date())
    first = date.fromisoformat(FIRST_TRADE_DATE)
    while d >= first:
        if d.weekday() < 5 and needed_window(schema, d)[1] <= available_end:
            return d
        d -= timedelta(days=1)
    return None


def newly_available(
    api, universe: Universe, roots: Sequence[str], cursor: dict[str, str], *, now: datetime | None = None,
    initial_start: date | None = None,
) -> tuple[dict[PartitionKey, set[dg.AssetKey]], dict[str, str]]:
    """(assets per (date, root) to request, new cursor {schema: last requested trade date})."""
    last_date = last_partition_date(now)
    schemas = sorted({s for r in roots for s in universe.roots[r].schemas if s in SCHEMA_TABLES})
    out: dict[PartitionKey, set[dg.AssetKey]] = defaultdict(set)
    new_cursor = dict(cursor)
    for schema in schemas:
        _, end = api.dataset_range(universe.dataset, schema)
        last = last_complete_trade_date(schema, end, last_date)
        if last is None:
            continue
        prev = cursor.get(schema)
        if prev:
            start = _next_weekday(date.fromisoformat(prev))
        else:
            start = initial_start or last  # first tick: the newest complete date only, not history
        for d in _weekdays(start, last):
            for r in roots:
                if schema in universe.roots[r].schemas:
                    out[(d, r)].add(raw_key(schema))
        if not prev or last > date.fromisoformat(prev):
            new_cursor[schema] = last.isoformat()
    return dict(out), new_cursor


def api_sensor_factory(jobs: Sequence, minimum_interval_seconds: int | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name=API_SENSOR_NAME,
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds or sensor_interval_s(DEFAULT_API_INTERVAL_S),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Asks Databento (metadata.get_dataset_range) which trade dates became available and requests "
            "them from the API; skipped without DATABENTO_API_KEY."
        ),
    )
    def chimera_databento_availability(context: dg.SensorEvaluationContext, databento: DatabentoSource):
        from chimera_assets.ingest.databento_api import API_KEY_ENV, DatabentoApi

        if not os.environ.get(API_KEY_ENV, "").strip():
            return dg.SkipReason(
                f"{API_KEY_ENV} is not set: no Databento API key configured, so there is nothing to ask "
                "(set the key in the code location's environment to pull new trade dates from the API)"
            )
        universe = get_universe()
        roots = api_roots(universe)
        start_env = os.environ.get("CHIMERA_API_SENSOR_START", "").strip()
        api = DatabentoApi(gateway=databento.api_gateway, max_attempts=3)
        cursor = json.loads(context.cursor) if context.cursor else {}
        wanted, new_cursor = newly_available(
            api, universe, roots, cursor, initial_start=date.fromisoformat(start_env) if start_env else None
        )
        tags = {"chimera/trigger": API_SENSOR_NAME}
        requests = partition_run_requests(
            wanted, universe, run_key_prefix="api", tags=tags, run_config=API_RUN_CONFIG, job_name=RAW_JOB_NAME
        )
        if requests:
            requests += policy_run_requests(_instance_or_none(context), {d for d, _ in wanted}, run_key_prefix="api", tags=tags)
        if not requests:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"no newly available trade dates since {cursor or 'start'}"),
                cursor=json.dumps(new_cursor, sort_keys=True),
            )
        context.log.info(f"databento: requesting {sum(len(v) for v in wanted.values())} raw partition(s)")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(new_cursor, sort_keys=True))

    return chimera_databento_availability


# --------------------------------------------------------------------------------------------------
# Daily safety net
# --------------------------------------------------------------------------------------------------


def landing_coverage(landing_dir: Path, universe: Universe, keys: list[PartitionKey]) -> dict[str, set[PartitionKey]]:
    """Per schema: which of ``keys`` the (readable) landing files cover, completely or partly."""
    files_by_schema: dict[str, list[tuple[Path, DbnInfo]]] = defaultdict(list)
    for p in list_dbn_files(landing_dir):
        try:
            info = header(p)
        except DbnDecodeError:
            continue
        if info.schema in SCHEMA_TABLES:
            files_by_schema[info.schema].append((p, info))
    return {s: _writable(s, files, keys, universe) for s, files in files_by_schema.items()}


def safety_net_requests(
    instance: dg.DagsterInstance, source: DatabentoSource, universe: Universe, day: date, n_days: int
) -> list[dg.RunRequest]:
    dates = [d for d in _weekdays(day - timedelta(days=3 * n_days), min(day, last_partition_date()))][-n_days:]
    if not dates:
        return []
    if source.mode == "api":
        roots = api_roots(universe)
        available = {
            s: {(d, r) for d in dates for r in roots if s in universe.roots[r].schemas} for s in SCHEMA_TABLES
        }
    else:
        keys = [(d, r) for d in dates for r in universe.root_names]
        available = landing_coverage(source.landing_path(), universe, keys)
    materialized = {k: instance.get_materialized_partitions(k) for k in (*RAW_KEYS, DAILY_ML_MATRIX)}
    wanted: dict[PartitionKey, set[dg.AssetKey]] = defaultdict(set)
    for schema, keys_ok in available.items():
        for d, r in keys_ok:
            if f"{d.isoformat()}|{r}" not in materialized[raw_key(schema)]:
                wanted[(d, r)].add(raw_key(schema))
    bar_keys = set(RAW_BARS)
    for d in dates:
        for r in universe.root_names:
            pk = f"{d.isoformat()}|{r}"
            has_bars = any(pk in materialized[k] for k in RAW_BARS) or bool(wanted.get((d, r), set()) & bar_keys)
            if has_bars and pk not in materialized[DAILY_ML_MATRIX]:
                wanted[(d, r)].update(DOWNSTREAM_MULTI)
    return partition_run_requests(
        dict(wanted), universe, run_key_prefix=f"safety|{day.isoformat()}",
        tags={"chimera/trigger": SAFETY_NET_NAME}, run_config=API_RUN_CONFIG if source.mode == "api" else None,
    )


def safety_net_factory(job) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=SAFETY_NET_NAME,
        cron_schedule=SAFETY_NET_CRON,
        execution_timezone=CHICAGO,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Evening safety net: raw partitions of the last trade dates that are available but never "
            "loaded, and the session chain of any session whose matrix partition is missing."
        ),
    )
    def chimera_daily_safety_net(context: dg.ScheduleEvaluationContext, databento: DatabentoSource):
        n_days = int(os.environ.get("CHIMERA_SAFETY_NET_DAYS", "5"))
        day = context.scheduled_execution_time.astimezone(_chicago()).date()
        requests = safety_net_requests(context.instance, databento, get_universe(), day, n_days)
        if not requests:
            return dg.SkipReason(f"the last {n_days} trade date(s) up to {day} are loaded and materialized")
        return requests

    return chimera_daily_safety_net


def _chicago():
    from zoneinfo import ZoneInfo

    return ZoneInfo(CHICAGO)


# --------------------------------------------------------------------------------------------------
# Wiring
# --------------------------------------------------------------------------------------------------


def raw_ingest_job():
    return dg.define_asset_job(
        RAW_JOB_NAME,
        selection=dg.AssetSelection.assets(*RAW_KEYS),
        description="Raw Databento tables for the requested (date, root) partitions (sensor-launched).",
    )


def policy_features_job():
    return dg.define_asset_job(
        POLICY_JOB_NAME,
        selection=dg.AssetSelection.assets(POLICY_FEATURES),
        description="Policy features of the trade dates the sensors load (date-only partitions).",
    )


def session_refresh_job():
    return dg.define_asset_job(
        REFRESH_JOB_NAME,
        selection=dg.AssetSelection.assets(*RAW_KEYS, *DOWNSTREAM_MULTI),
        description="Raw tables through session bars, features and the matrix for (date, root) partitions.",
    )


@dataclass
class Automation:
    jobs: list
    sensors: list
    schedules: list


def build_sensors_and_schedules() -> Automation:
    """The jobs, sensors and schedule to add to the Definitions (plus ``automation_sensor()``)."""
    raw_job = raw_ingest_job()
    policy_job = policy_features_job()
    refresh_job = session_refresh_job()
    return Automation(
        jobs=[raw_job, policy_job, refresh_job],
        sensors=[landing_sensor_factory([raw_job, policy_job]), api_sensor_factory([raw_job, policy_job])],
        schedules=[safety_net_factory(refresh_job)],
    )
