"""Guarantee 2: any order of events ends where one clean run ends.

50 seeded random sequences of file arrivals (out of order, cut daily or in blocks, per root or for both
roots, overlapping, byte-identical copies under another name) interleaved with runs of random partial
ranges (dates x roots, raw 1h alone or with session bars) and exact re-runs. After EVERY run:

* no table has two rows with one key;
* every raw row is a row a clean run has (nothing foreign, no half-updated row);
* rows outside the run's partitions did not move (each MERGE is scoped to its own partitions);
* each partition the run wrote that the files present covered completely equals the clean run's
  partition (raw bars, and the session bar's prices and volume).

After the last file arrives, one run of the whole range makes both tables equal to a single clean run.
Seeds 0-9 run in the normal suite, 10-49 in the slow group. The runs materialize the assets without
their asset checks (read-only evaluations that triple a small run's cost); the write audits, which sit
in the write path, still run.
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from chimera_assets.definitions import build_definitions
from chimera_assets.demo.data import demo_dbn_bytes, write_demo_files
from chimera_assets.schemas import OHLCV_1H, SESSION_BARS
from chimera_assets.warehouse import get_warehouse
from chimera_assets_tests.dagster_helpers import QUIET, asset_key
from chimera_assets_tests.reliability.helpers import (
    H1,
    SB,
    assert_ledger_consistent,
    canonical,
    duplicate_keys,
    read_tables,
)

ROOTS = ("ZL", "MES")  # neighbours in the universe: a range ZL..MES is both
# Six trade dates across a weekend, the US DST switch (03-10) and an MES roll (03-07).
FIRST_DAY, END_DAY = date(2024, 3, 5), date(2024, 3, 14)  # UTC days the files can hold, end exclusive
TRADE_DATES = [d for d in (date(2024, 3, 6) + timedelta(days=i) for i in range(8)) if d.weekday() < 5]
SESSION_PRICE_COLUMNS = ["trade_date", "symbol", "instrument_id", "open", "high", "low", "close", "volume",
                         "bar_count", "source_freq"]
FAST_SEEDS = range(10)
SLOW_SEEDS = range(10, 50)

_DEFS: dict = {}
_BYTES: dict[tuple, bytes] = {}


def _defs() -> dg.Definitions:
    if "d" not in _DEFS:
        _DEFS["d"] = build_definitions()
    return _DEFS["d"]


def _instance() -> dg.DagsterInstance:
    """One in-memory instance for every sequence (run history only; each sequence has its own warehouse)."""
    if "i" not in _DEFS:
        _DEFS["i"] = dg.DagsterInstance.ephemeral()
    return _DEFS["i"]


def _run(keys, start: str, end: str, first_root: str, last_root: str,
         instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """``run_range`` without the asset checks: one Dagster run of ``keys`` over [start, end] x roots."""
    job = _defs().resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={asset_key(k) for k in keys}, asset_check_selection=set())
    tags = {"dagster/asset_partition_range_start": f"{start}|{first_root}",
            "dagster/asset_partition_range_end": f"{end}|{last_root}"}
    return job.execute_in_process(tags=tags, instance=instance or _instance(), run_config=QUIET,
                                  raise_on_error=False)


def _dbn(roots: tuple[str, ...], start: date, end: date) -> bytes:
    key = (roots, start, end)
    if key not in _BYTES:
        _BYTES[key] = demo_dbn_bytes(list(roots), start, end, "ohlcv-1h")
    return _BYTES[key]


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, pl.DataFrame]:
    """One clean run: one file with everything, the whole range in one run."""
    home = tmp_path_factory.mktemp("clean_sequence")
    mp = pytest.MonkeyPatch()
    mp.setenv("CHIMERA_HOME", str(home))
    mp.setenv("CHIMERA_LANDING_DIR", str(home / "landing"))
    try:
        write_demo_files(home / "landing", list(ROOTS), FIRST_DAY, END_DAY)
        assert _run([H1, SB], TRADE_DATES[0].isoformat(), TRADE_DATES[-1].isoformat(), "ZL", "MES").success
        wh = get_warehouse()
        return {
            "raw": canonical(OHLCV_1H, wh.read(OHLCV_1H), drop_volatile=True),
            "sessions": canonical(SESSION_BARS, wh.read(SESSION_BARS), drop_volatile=True),
        }
    finally:
        mp.undo()


# -- the random plan ----------------------------------------------------------------------------------------
class Piece:
    """One file that will arrive: its roots and UTC days [start, end)."""

    def __init__(self, name: str, roots: tuple[str, ...], start: date, end: date, copy_of: Piece | None = None):
        self.name, self.roots, self.start, self.end, self.copy_of = name, roots, start, end, copy_of

    def __repr__(self) -> str:
        kind = f" copy of {self.copy_of.name}" if self.copy_of else ""
        return f"{self.name}[{'+'.join(self.roots)} {self.start:%m-%d}..{self.end:%m-%d}){kind}"

    def days(self) -> set[date]:
        return {self.start + timedelta(days=i) for i in range((self.end - self.start).days)}


def _plan_pieces(rng: random.Random) -> list[Piece]:
    """Pieces whose union covers every day for both roots, plus overlapping extras and copies."""
    pieces: list[Piece] = []
    n = 0

    def add(roots, a, b, copy_of=None):
        nonlocal n
        n += 1
        pieces.append(Piece(f"p{n:02d}", roots, a, b, copy_of))

    per_root = rng.random() < 0.4
    for roots in ([(r,) for r in ROOTS] if per_root else [ROOTS]):
        day = FIRST_DAY
        while day < END_DAY:
            stop = min(END_DAY, day + timedelta(days=rng.randint(1, 4)))
            if rng.random() < 0.25:  # cut into daily files, like a daily batch
                for i in range((stop - day).days):
                    add(roots, day + timedelta(days=i), day + timedelta(days=i + 1))
            else:
                add(roots, day, stop)
            day = stop
    for _ in range(rng.randint(0, 2)):  # overlapping downloads of other windows
        a = FIRST_DAY + timedelta(days=rng.randint(0, (END_DAY - FIRST_DAY).days - 1))
        add(rng.choice([ROOTS, ("ZL",), ("MES",)]), a, min(END_DAY, a + timedelta(days=rng.randint(1, 4))))
    if rng.random() < 0.5:  # the same bytes under another name
        src = rng.choice(pieces)
        add(src.roots, src.start, src.end, copy_of=src)
    rng.shuffle(pieces)  # arrivals out of order
    return pieces


def _covered(arrived: list[Piece]) -> dict[str, set[date]]:
    days: dict[str, set[date]] = {r: set() for r in ROOTS}
    for p in arrived:
        for r in p.roots:
            days[r] |= p.days()
    return days


def _complete(d: date, root: str, days: dict[str, set[date]]) -> bool:
    """Every UTC day from the previous weekday's evening session up to ``d`` is in the files."""
    prev = d - timedelta(days=1)
    while prev.weekday() >= 5:
        prev -= timedelta(days=1)
    need = {prev + timedelta(days=i) for i in range((d - prev).days + 1)}
    return need <= days[root]


def _arrive(piece: Piece, landing: Path) -> None:
    data = _dbn(piece.roots, piece.start, piece.end)
    dest = landing / f"{piece.name}-{'-'.join(piece.roots)}-{piece.start:%Y%m%d}-{piece.end:%Y%m%d}.dbn.zst"
    tmp = landing / f".{dest.name}.partial"
    tmp.write_bytes(data)
    os.replace(tmp, dest)  # as a downloader would: never a half-written file under the final name


def _keys(frame: pl.DataFrame, d0: date, d1: date, roots: tuple[str, ...]) -> pl.Expr:
    return pl.col("trade_date").is_between(d0, d1) & pl.col("symbol").is_in(list(roots))


# -- the test -------------------------------------------------------------------------------------------------
def _run_sequence(seed: int, clean: dict[str, pl.DataFrame], tmp_path: Path, monkeypatch) -> None:
    rng = random.Random(seed)
    landing = tmp_path / "landing"
    landing.mkdir()
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    instance = _instance()
    wh = get_warehouse()
    pending = _plan_pieces(rng)
    arrived: list[Piece] = []
    log: list[str] = [f"seed {seed}"]
    last_run = None
    n_runs = rng.randint(2, 3)
    # Interleave: each run happens after a random number of arrivals (some before anything arrived).
    run_after = sorted(rng.randint(0, len(pending)) for _ in range(n_runs))
    step = 0
    for i in range(len(pending) + 1):
        while run_after and run_after[0] == i:
            run_after.pop(0)
            if last_run is not None and rng.random() < 0.25:
                run = last_run  # an exact re-run
            else:
                a, b = sorted(rng.sample(range(len(TRADE_DATES)), 2)) if rng.random() < 0.8 else (0, len(TRADE_DATES) - 1)
                roots = rng.choice([ROOTS, ("ZL",), ("MES",)])
                assets = (H1, SB) if rng.random() < 0.35 else (H1,)
                run = (TRADE_DATES[a], TRADE_DATES[b], roots, assets)
            last_run = run
            step += 1
            log.append(f"run {step}: {run[0]}..{run[1]} {'+'.join(run[2])} {','.join(a.split('.')[1] for a in run[3])}"
                       f" after {[p.name for p in arrived]}")
            _checked_run(wh, run, arrived, clean, instance, "\n".join(log))
        if i < len(pending):
            piece = pending[i]
            _arrive(piece, landing)
            arrived.append(piece)
            log.append(f"arrive {piece!r}")
    # Everything has arrived: one run of the whole range ends where a clean run ends.
    d0, d1 = TRADE_DATES[0].isoformat(), TRADE_DATES[-1].isoformat()
    assert _run([H1, SB], d0, d1, "ZL", "MES", instance).success, "\n".join(log)
    what = "\n".join(log)
    tables = read_tables(wh, [OHLCV_1H, SESSION_BARS])
    for spec in (OHLCV_1H, SESSION_BARS):
        assert duplicate_keys(spec, tables[spec.fqn]).is_empty(), f"{spec.fqn}: duplicate keys\n{what}"
    raw = canonical(OHLCV_1H, tables[OHLCV_1H.fqn], drop_volatile=True)
    assert raw.equals(clean["raw"]), f"raw bars differ from a clean run ({raw.height} vs {clean['raw'].height})\n{what}"
    sessions = canonical(SESSION_BARS, tables[SESSION_BARS.fqn], drop_volatile=True)
    assert sessions.equals(clean["sessions"]), f"session bars differ from a clean run\n{what}"
    assert_ledger_consistent(wh)


def _checked_run(wh, run, arrived, clean, instance, what: str) -> None:
    d0, d1, roots, assets = run
    before = read_tables(wh, [OHLCV_1H])[OHLCV_1H.fqn]
    res = _run(list(assets), d0.isoformat(), d1.isoformat(), roots[0], roots[-1], instance)
    tables = read_tables(wh, [OHLCV_1H, SESSION_BARS])
    # Gap days never fail a range (SPEC 6.3, 2026-12-08): session bars of a session day with no raw bar
    # (no file has reached it yet) are 0-row partitions listed with their reason, never rows from nothing.
    run_keys = pl.DataFrame([(d, r) for d in TRADE_DATES if d0 <= d <= d1 for r in roots],
                            schema={"trade_date": pl.Date, "symbol": pl.Utf8}, orient="row")
    lacking = run_keys.join(tables[OHLCV_1H.fqn].select("trade_date", "symbol").unique(),
                            on=["trade_date", "symbol"], how="anti")
    assert res.success, what
    if SB in assets and lacking.height:
        assert lacking.join(tables[SESSION_BARS.fqn].select("trade_date", "symbol"),
                            on=["trade_date", "symbol"], how="semi").is_empty(), what
        meta = next(ev.materialization.metadata for ev in res.get_asset_materialization_events()
                    if ev.asset_key == asset_key(SB))
        listed = {k for s in ("missing", "no_trades") if f"chimera/{s}" in meta
                  for k in meta[f"chimera/{s}"].value["partitions"]}
        first = lacking.sort("symbol", "trade_date").row(0)
        assert f"{first[0]}|{first[1]}" in listed, what
    sb_refused = False
    for spec in (OHLCV_1H, SESSION_BARS):
        dups = duplicate_keys(spec, tables[spec.fqn])
        assert dups.is_empty(), f"{spec.fqn}: {dups.height} duplicate keys\n{what}"
    after = tables[OHLCV_1H.fqn]
    inside = _keys(after, d0, d1, roots)
    # Rows outside the run's partitions are exactly as they were.
    assert canonical(OHLCV_1H, after.filter(~inside)).equals(canonical(OHLCV_1H, before.filter(~inside))), \
        f"a run of {d0}..{d1} {roots} changed rows outside its partitions\n{what}"
    raw = canonical(OHLCV_1H, after, drop_volatile=True)
    foreign = raw.join(clean["raw"], on=raw.columns, how="anti", nulls_equal=True)
    assert foreign.is_empty(), f"rows a clean run does not have: {foreign.head(3).rows()}\n{what}"
    days = _covered(arrived)
    complete = [(d, r) for d in TRADE_DATES if d0 <= d <= d1 for r in roots if _complete(d, r, days)]
    if not complete:
        return
    kf = pl.DataFrame({"trade_date": [d for d, _ in complete], "symbol": [r for _, r in complete]},
                      schema={"trade_date": pl.Date, "symbol": pl.Utf8})
    got = raw.join(kf, on=["trade_date", "symbol"], how="semi")
    want = clean["raw"].join(kf, on=["trade_date", "symbol"], how="semi")
    assert got.equals(want), f"completely covered partitions differ from a clean run ({got.height} vs " \
                             f"{want.height} bars)\n{what}"
    if SB in assets and not sb_refused:
        sb = canonical(SESSION_BARS, tables[SESSION_BARS.fqn], drop_volatile=True).join(
            kf, on=["trade_date", "symbol"], how="semi").select(SESSION_PRICE_COLUMNS)
        want_sb = clean["sessions"].join(kf, on=["trade_date", "symbol"], how="semi").select(SESSION_PRICE_COLUMNS)
        assert sb.equals(want_sb), f"session bars of completely covered partitions differ\n{what}"


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_random_sequence_ends_like_one_clean_run(seed, clean, tmp_path, monkeypatch):
    _run_sequence(seed, clean, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_random_sequence_ends_like_one_clean_run_more_seeds(seed, clean, tmp_path, monkeypatch):
    _run_sequence(seed, clean, tmp_path, monkeypatch)
