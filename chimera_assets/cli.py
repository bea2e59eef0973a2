"""``chimera``: run the pipeline without the UI.

    chimera run --start 2024-01-02 --end 2024-06-28 --roots ZL,MES --demo
    chimera run --start 2024-01-02 --end 2025-12-12 --roots ZL,MES --landing-dir ../shared/data/databento-batch
    chimera run ... --api            # the Databento Historical API (DATABENTO_API_KEY)

Exit status: 0 on success, 1 when a run or a blocking check failed, 2 on bad arguments/inputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chimera", description="chimera: Databento CME data -> daily ML matrix")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="ingest and materialize the whole graph for a date range and roots")
    run.add_argument("--start", type=_date, required=True, help="first trade date (YYYY-MM-DD)")
    run.add_argument("--end", type=_date, required=True, help="last trade date (YYYY-MM-DD), inclusive")
    run.add_argument("--roots", default="ZL,MES", help="comma-separated roots of the universe (default ZL,MES)")
    src = run.add_mutually_exclusive_group()
    src.add_argument("--landing-dir", type=Path, help="directory of Databento DBN files (.dbn / .dbn.zst)")
    src.add_argument("--api", action="store_true", help="pull from the Databento Historical API (DATABENTO_API_KEY)")
    src.add_argument("--demo", action="store_true", help="generate SYNTHETIC demo DBN files first (no key needed)")
    run.add_argument("--policy-dir", type=Path, help="directory of policy event files (parquet/CSV/JSONL)")
    run.add_argument("--no-training", action="store_true", help="skip the training tables")
    from chimera_assets.ingest.prune_cli import add_prune_parser

    add_prune_parser(sub)
    return p


def _fail(msg: str) -> int:
    print(f"chimera: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    # Settings are read from the environment, so the CLI sets it before anything resolves them.
    from chimera_assets.settings import SettingsError, get_settings

    if args.landing_dir is not None:
        if not args.landing_dir.is_dir():
            return _fail(f"--landing-dir {args.landing_dir} is not a directory")
        os.environ["CHIMERA_LANDING_DIR"] = str(args.landing_dir.resolve())
    if args.policy_dir is not None:
        if not args.policy_dir.is_dir():
            return _fail(f"--policy-dir {args.policy_dir} is not a directory")
        os.environ["CHIMERA_POLICY_DIR"] = str(args.policy_dir.resolve())
    try:
        settings = get_settings()
    except SettingsError as exc:
        return _fail(str(exc))
    if args.api and not os.environ.get("DATABENTO_API_KEY"):
        return _fail("--api needs the Databento key in the environment variable DATABENTO_API_KEY")

    import dagster as dg

    from chimera_assets.runner import RunInputError, format_summary, run_graph, validate_range
    from chimera_assets.universe import UniverseConfigError, get_universe
    from chimera_assets.warehouse import get_warehouse

    roots = [r for r in args.roots.split(",") if r.strip()]
    try:
        validate_range(args.start, args.end)
        roots = get_universe().require_roots(roots)
    except (RunInputError, UniverseConfigError) as exc:
        return _fail(str(exc))

    if args.demo:
        from chimera_assets.demo_data import write_demo_files

        demo_dir = settings.home / "demo_landing"
        # A month of history before the range lets the first sessions get their lookback features.
        files = write_demo_files(demo_dir, roots, args.start - timedelta(days=31), args.end + timedelta(days=1))
        os.environ["CHIMERA_LANDING_DIR"] = str(demo_dir)
        print(f"wrote {len(files)} SYNTHETIC demo DBN file(s) to {demo_dir}")

    from chimera_assets.definitions import build_definitions

    defs = build_definitions(source_mode="api" if args.api else "landing")
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    warehouse = get_warehouse(get_settings())
    t0 = time.perf_counter()
    print(f"chimera run {args.start}..{args.end} roots={','.join(roots)} warehouse={warehouse!r}")
    try:
        summary = run_graph(
            defs, args.start, args.end, roots, instance, warehouse, include_training=not args.no_training
        )
    except RunInputError as exc:
        return _fail(str(exc))
    print(format_summary(summary))
    print(f"  wall time: {time.perf_counter() - t0:.1f}s")
    return EXIT_OK if summary.success and not summary.checks_failed else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # One "planned" event per asset and run instead of one per partition: a third less Dagster
    # bookkeeping on large backfills (benchmarks/BENCHMARKS.md, full graph 280 s -> 185 s).
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    # Beta/preview notices about Dagster APIs are for developers, not for people running the pipeline.
    import warnings

    import dagster as dg
    import databento  # noqa: F401 - it sets DeprecationWarning to "always" on import; ours must come after

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "prune":
        from chimera_assets.ingest.prune_cli import cmd_prune

        return cmd_prune(args)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
