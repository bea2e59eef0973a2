"""``chimera``: run the pipeline without the UI.

    chimera run --start 2024-01-02 --end 2024-06-28 --roots ZL,MES --demo
    chimera run --start 2024-01-02 --end 2025-12-12 --roots ZL,MES --landing-dir ../shared/data/databento-batch
    chimera run ... --api            # the Databento Historical API (DATABENTO_API_KEY)
    chimera bigquery migrate-partitioning [--apply]   # DAY -> MONTH partitioned BigQuery tables
    chimera prune [--apply]          # list (default) / remove raw rows whose source files are gone
    chimera ui [--port 3000]         # the Dagster UI on the same instance, http://127.0.0.1:3000
    chimera universe init --from DIR # universe.yaml entries for the roots of a landing directory

Runs are recorded in the persistent Dagster instance at ``$DAGSTER_HOME`` (default
``$CHIMERA_HOME/dagster``, see chimera_assets/lib/instance.py), so ``chimera ui`` shows them.

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
    run.add_argument("--roots", default="ZL,MES",
                     help="comma-separated roots of the universe, or 'all' (default ZL,MES)")
    src = run.add_mutually_exclusive_group()
    src.add_argument("--landing-dir", type=Path, help="directory of Databento DBN files (.dbn / .dbn.zst)")
    src.add_argument("--api", action="store_true", help="pull from the Databento Historical API (DATABENTO_API_KEY)")
    src.add_argument("--demo", action="store_true", help="generate SYNTHETIC demo DBN files first (no key needed)")
    run.add_argument("--policy-dir", type=Path, help="directory of policy event files (parquet/CSV/JSONL)")
    run.add_argument("--no-training", action="store_true", help="skip the training tables")
    run.add_argument(
        "--ephemeral-instance", action="store_true",
        help="record the runs in a throwaway in-memory Dagster instance (nothing shows in the UI)",
    )
    _add_ui_parser(sub)
    from chimera_assets.training.export import add_export_parser

    add_export_parser(sub)  # chimera export: a training set to parquet/CSV
    from chimera_assets.warehouse.bigquery_migrate import add_parser as add_bigquery_parser

    add_bigquery_parser(sub)  # chimera bigquery migrate-partitioning [--apply]
    from chimera_assets.prune_cli import add_prune_parser

    add_prune_parser(sub)
    from chimera_assets.universe_cli import add_universe_parser

    add_universe_parser(sub)  # chimera universe init --from DIR / products
    return p


def _add_ui_parser(sub) -> None:
    ui = sub.add_parser("ui", help="serve the Dagster UI (dagster dev) on chimera's instance, on 127.0.0.1")
    ui.add_argument("--port", type=int, default=3000, help="port of the UI on 127.0.0.1 (default 3000)")


def _fail(msg: str) -> int:
    print(f"chimera: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    # The options reach the runs as resource fields (build_definitions below), never through the
    # environment: this process's environment is left as it was.
    from chimera_assets.settings import databento_api_key, get_settings

    landing_dir = policy_dir = None
    if args.landing_dir is not None:
        if not args.landing_dir.is_dir():
            return _fail(f"--landing-dir {args.landing_dir} is not a directory")
        landing_dir = str(args.landing_dir.resolve())
    if args.policy_dir is not None:
        if not args.policy_dir.is_dir():
            return _fail(f"--policy-dir {args.policy_dir} is not a directory")
        policy_dir = str(args.policy_dir.resolve())
    from chimera_assets.quality.registry import QualityConfig
    from chimera_assets.settings import check_home, unknown_variables

    for line in unknown_variables():
        print(f"chimera: warning: {line}", file=sys.stderr)
    try:
        settings = get_settings()
        check_home(settings)
        QualityConfig.from_env()  # a bad CHIMERA_QUALITY_* fails here, not after two stages wrote
    except ValueError as exc:  # SettingsError included
        return _fail(str(exc))
    if args.api and not databento_api_key():
        return _fail("--api needs the Databento key in the environment variable DATABENTO_API_KEY")

    import dagster as dg

    from chimera_assets.lib.runner import RunInputError, format_summary, run_graph, validate_range
    from chimera_assets.universe import UniverseConfigError, get_universe
    from chimera_assets.warehouse import get_warehouse

    roots = [r for r in args.roots.split(",") if r.strip()]
    try:
        validate_range(args.start, args.end)
        universe = get_universe()
        roots = universe.root_names if [r.strip().lower() for r in roots] == ["all"] else universe.require_roots(roots)
    except (RunInputError, UniverseConfigError) as exc:
        return _fail(str(exc))

    if args.demo:
        from chimera_assets.demo.data import write_demo_files

        demo_dir = settings.home / "demo_landing"
        # A month of history before the range lets the first sessions get their lookback features.
        files = write_demo_files(demo_dir, roots, args.start - timedelta(days=31), args.end + timedelta(days=1))
        landing_dir = str(demo_dir)
        print(f"wrote {len(files)} SYNTHETIC demo DBN file(s) to {demo_dir}")

    from chimera_assets.definitions import build_definitions

    defs = build_definitions(
        source_mode="api" if args.api else "landing", landing_dir=landing_dir, policy_dir=policy_dir
    )
    if args.ephemeral_instance:
        instance = dg.DagsterInstance.ephemeral()
    else:
        from chimera_assets.lib.instance import InstanceUnusableError, open_instance

        try:
            instance, status = open_instance()
        except InstanceUnusableError as exc:
            print(f"chimera: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        if status.notice:
            print(f"chimera: note: {status.notice}", file=sys.stderr)
        print(f"Dagster instance: {status.home} (see the runs with: chimera ui)")
        from chimera_assets.lib.run_health import sweep_dead_runs

        # Runs of a killed chimera process (kill -9, OOM) would stay STARTED for ever.
        swept = sweep_dead_runs(instance)
        if swept:
            print(f"chimera: note: {len(swept)} run(s) whose process is gone marked failed: {', '.join(swept[:5])}",
                  file=sys.stderr)
    from chimera_assets.lib.run_health import process_tags

    warehouse = get_warehouse(settings)
    t0 = time.perf_counter()
    print(f"chimera run {args.start}..{args.end} roots={','.join(roots)} warehouse={warehouse!r}")
    try:
        summary = run_graph(
            defs, args.start, args.end, roots, instance, warehouse, include_training=not args.no_training,
            extra_tags=process_tags(),  # lets the next command find this run if this process is killed
        )
    except RunInputError as exc:
        return _fail(str(exc))
    print(format_summary(summary))
    print(f"  wall time: {time.perf_counter() - t0:.1f}s")
    return EXIT_OK if summary.success and not summary.checks_failed else EXIT_FAILED


def ui_command(port: int) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of ``dagster dev`` on chimera's instance, loopback only.

    The workspace file beside the instance loads the ``chimera_assets`` this command runs from (its
    parent directory is the working directory), under the location name ``chimera``."""
    import yaml

    import chimera_assets
    from chimera_assets.lib.instance import child_process_env

    env, status = child_process_env()
    if status.notice:
        print(f"chimera: note: {status.notice}", file=sys.stderr)
    workspace = status.home / "workspace.yaml"
    entry = {"module_name": "chimera_assets.definitions", "location_name": "chimera",
             "working_directory": str(Path(chimera_assets.__file__).resolve().parents[1])}
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": entry}]}, sort_keys=False))
    argv = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)]
    return argv, env


def cmd_ui(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        return _fail(f"--port {args.port} is not a TCP port (1-65535)")
    from chimera_assets.settings import SettingsError

    try:
        argv, env = ui_command(args.port)
    except SettingsError as exc:
        return _fail(str(exc))
    print(f"chimera ui: Dagster instance {env['DAGSTER_HOME']}")
    print(f"chimera ui: serving http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    os.execve(argv[0], argv, env)  # dagster dev takes over this process: Ctrl-C reaches it directly
    return EXIT_FAILED  # not reached


def main(argv: list[str] | None = None) -> int:
    from chimera_assets.settings import SettingsError

    try:
        return _main(argv)
    except SettingsError as exc:  # e.g. CHIMERA_SENSOR_INTERVAL_S=abc, read while the definitions build
        return _fail(str(exc))
    except KeyboardInterrupt:
        # One line instead of Dagster's tracebacks: every write is atomic, so nothing is half-written.
        print("chimera: interrupted (Ctrl-C); each partition holds its old or its new contents, never a mix",
              file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "ui":
        return cmd_ui(args)
    if args.command == "universe":  # needs neither Dagster nor its bookkeeping
        from chimera_assets.universe_cli import cmd_universe

        return cmd_universe(args)
    from chimera_assets.lib.instance import apply_bookkeeping_env

    # Event batching and one "planned" event per asset and run (chimera_assets/lib/instance.py): Dagster
    # reads both in the process that stores the events, here this one.
    apply_bookkeeping_env()
    # Beta/preview notices about Dagster APIs are for developers, not for people running the pipeline.
    import warnings

    import dagster as dg
    import databento  # noqa: F401 - it sets DeprecationWarning to "always" on import; ours must come after

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "export":
        from chimera_assets.training.export import cmd_export

        return cmd_export(args)
    if args.command == "bigquery":
        from chimera_assets.warehouse.bigquery_migrate import cli_main as bigquery_main

        return bigquery_main(args)
    if args.command == "prune":
        from chimera_assets.prune_cli import cmd_prune

        return cmd_prune(args)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
