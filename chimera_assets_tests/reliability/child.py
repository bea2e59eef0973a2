"""Child processes for the reliability tests: ``python -m chimera_assets_tests.reliability.child CMD ...``.

The tests start these as real OS processes so they can be killed with SIGKILL (no ``finally``, no
``atexit``, no Python cleanup of any kind) or run side by side against one DuckDB file.

Commands:

* ``merge-hold``: MERGE generation ``--gen`` of a large synthetic frame and stop inside the open
  transaction (``Warehouse.before_commit``): the MERGE has run, nothing is committed; it writes
  ``--ready`` and sleeps until killed.
* ``blocks-hold``: write generation ``--gen`` with ``merge_blocks`` (one block per trade date) and
  stop inside the publishing transaction: every block is in the staging table, the INSERT/MERGE into
  the target has run, nothing of it is committed; writes ``--ready`` and sleeps until killed.
* ``merge-loop``: MERGE generations ``--first-gen``, +1, +2, ... forever, appending each committed
  generation to ``--progress`` (after the COMMIT returns), so a kill at a random moment lands before,
  inside or after a MERGE.
* ``hold-lock``: open the DuckDB file read-write (taking its lock), write ``--ready``, hold it for
  ``--seconds``.
* ``run-range``: materialize assets over a date x root range in one Dagster run (the tests'
  ``run_range``), landing or API mode; optionally wait for a ``--go`` file first so two children
  start together. Exit 0 on success, 3 when the run failed on the warehouse lock, 1 otherwise; the
  root cause goes to stderr.

Generation frames (:func:`generation_frame`) differ between generations in BOTH their key sets and
their values, and each row carries its generation in ``load_id``: any mix of two generations in the
table is visible.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

GEN_DATES = [date(2024, 3, 4) + timedelta(days=i) for i in range(12) if (date(2024, 3, 4) + timedelta(days=i)).weekday() < 5]
GEN_SYMBOLS = ("ZL", "MES")
EXIT_OK, EXIT_FAILED, EXIT_LOCKED = 0, 1, 3


def generation_frame(gen: int, rows: int = 120_000) -> pl.DataFrame:
    """Rows of ``market_data.databento_futures_ohlcv_1h`` for generation ``gen``.

    Base row i exists in generation g unless ``i % 5 == g % 5`` (so consecutive generations insert,
    update AND delete rows); every value encodes g; ``load_id`` is ``gen-<g>``.
    """
    from chimera_assets.schemas import OHLCV_1H

    i = np.arange(rows, dtype=np.int64)
    i = i[i % 5 != gen % 5]
    n_parts = len(GEN_DATES) * len(GEN_SYMBOLS)
    part = i % n_parts
    dates = np.array(GEN_DATES, dtype="datetime64[D]")[part // len(GEN_SYMBOLS)]
    symbols = np.array(GEN_SYMBOLS)[part % len(GEN_SYMBOLS)]
    g = float(gen)
    frame = pl.DataFrame(
        {
            "ts_event": pl.Series(1_709_500_000_000_000 + i * 1_000_000).cast(pl.Datetime("us", "UTC")),
            "trade_date": pl.Series(dates).cast(pl.Date),
            "symbol": symbols,
            "series": [f"{s}.v.0" for s in symbols],
            "raw_symbol": pl.Series([None] * len(i), dtype=pl.Utf8),
            "instrument_id": (i // n_parts) % 7 + 1000,
            "open": g + 0.25,
            "high": g + 1.0,
            "low": g,
            "close": g + 0.75,
            "volume": gen * 10 + (i % 10),
            "is_spread": False,
            "publisher_id": 1,
            "load_id": f"gen-{gen}",
        }
    )
    return frame.select(OHLCV_1H.column_names)


def generation_slice():
    from chimera_assets.warehouse.base import Slice

    return Slice.from_keys([(d, s) for d in GEN_DATES for s in GEN_SYMBOLS])


def write_generation(db: str | Path, gen: int, rows: int, before_commit=None) -> None:
    from chimera_assets.schemas import OHLCV_1H
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    wh = DuckDBWarehouse(db)
    if before_commit is not None:
        wh.before_commit = before_commit
    wh.merge(OHLCV_1H, generation_frame(gen, rows), generation_slice())


def generation_blocks(gen: int, rows: int) -> list:
    """Generation ``gen`` cut into one block per trade date, with each block's slice (``merge_blocks``)."""
    from chimera_assets.warehouse.base import Slice

    frame = generation_frame(gen, rows)
    return [(frame.filter(pl.col("trade_date") == d), Slice.from_keys([(d, s) for s in GEN_SYMBOLS]))
            for d in GEN_DATES]


def _touch(path: str | Path, text: str = "ready\n") -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # the test never sees a half-written marker


def cmd_merge_hold(args) -> int:
    def hold(spec) -> None:
        _touch(args.ready)
        time.sleep(600)

    write_generation(args.db, args.gen, args.rows, before_commit=hold)
    return EXIT_OK


def cmd_blocks_hold(args) -> int:
    from chimera_assets.schemas import OHLCV_1H
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    def hold(spec) -> None:
        _touch(args.ready)
        time.sleep(600)

    wh = DuckDBWarehouse(args.db)
    wh.before_commit = hold  # every block staged (committed there); the publish ran, not committed
    wh.merge_blocks(OHLCV_1H, generation_blocks(args.gen, args.rows), generation_slice())
    return EXIT_OK


def cmd_merge_loop(args) -> int:
    from chimera_assets.schemas import OHLCV_1H
    from chimera_assets.warehouse.duckdb_backend import DuckDBWarehouse

    wh = DuckDBWarehouse(args.db)
    gen = args.first_gen
    frame = generation_frame(gen, args.rows)
    with open(args.progress, "a") as progress:
        progress.write("started\n")
        progress.flush()
        while True:
            wh.merge(OHLCV_1H, frame, generation_slice())
            progress.write(f"{gen}\n")
            progress.flush()
            os.fsync(progress.fileno())
            gen += 1
            frame = generation_frame(gen, args.rows)


def cmd_hold_lock(args) -> int:
    import duckdb

    con = duckdb.connect(args.db)
    con.execute("CREATE TABLE IF NOT EXISTS lock_holder (x INTEGER)")
    _touch(args.ready)
    time.sleep(args.seconds)
    con.close()
    return EXIT_OK


def cmd_run_range(args) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    from chimera_assets.definitions import build_definitions
    from chimera_assets.lib.runner import root_cause
    from chimera_assets.warehouse import duckdb_backend
    from chimera_assets_tests.dagster_helpers import run_range

    if args.lock_timeout is not None:
        duckdb_backend.DuckDBWarehouse.__init__.__defaults__ = (args.lock_timeout,)
    defs = build_definitions(args.mode)
    if args.go:
        _touch(args.ready)
        deadline = time.monotonic() + 120
        while not Path(args.go).exists():
            if time.monotonic() > deadline:
                print("no go signal", file=sys.stderr)
                return EXIT_FAILED
            time.sleep(0.01)
    res = run_range(args.keys.split(","), args.start, args.end, args.first_root, args.last_root, defs=defs,
                    raise_on_error=False)
    if res.success:
        print("run succeeded")
        return EXIT_OK
    failures = [e for e in res.all_events if e.is_step_failure]
    msg = "; ".join(root_cause(e.step_failure_data.error) for e in failures) or "run failed"
    print(msg, file=sys.stderr)
    return EXIT_LOCKED if "locked by another process" in msg else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="reliability-child")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("merge-hold")
    m.add_argument("--db", required=True)
    m.add_argument("--ready", required=True)
    m.add_argument("--gen", type=int, required=True)
    m.add_argument("--rows", type=int, default=120_000)
    bh = sub.add_parser("blocks-hold")
    bh.add_argument("--db", required=True)
    bh.add_argument("--ready", required=True)
    bh.add_argument("--gen", type=int, required=True)
    bh.add_argument("--rows", type=int, default=120_000)
    loop = sub.add_parser("merge-loop")
    loop.add_argument("--db", required=True)
    loop.add_argument("--progress", required=True)
    loop.add_argument("--first-gen", type=int, default=1)
    loop.add_argument("--rows", type=int, default=120_000)
    h = sub.add_parser("hold-lock")
    h.add_argument("--db", required=True)
    h.add_argument("--ready", required=True)
    h.add_argument("--seconds", type=float, default=5.0)
    r = sub.add_parser("run-range")
    r.add_argument("--keys", required=True, help="comma-separated schema.table asset names")
    r.add_argument("--start", required=True)
    r.add_argument("--end", required=True)
    r.add_argument("--first-root", required=True)
    r.add_argument("--last-root")
    r.add_argument("--mode", default="landing", choices=["landing", "api"])
    r.add_argument("--lock-timeout", type=float)
    r.add_argument("--ready")
    r.add_argument("--go")
    args = p.parse_args(argv)
    return {
        "merge-hold": cmd_merge_hold, "blocks-hold": cmd_blocks_hold, "merge-loop": cmd_merge_loop, "hold-lock": cmd_hold_lock,
        "run-range": cmd_run_range,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
