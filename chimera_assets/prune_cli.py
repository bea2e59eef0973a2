"""``chimera prune``: list (dry run, the default) or remove (``--apply``) raw rows whose source files
are gone. See :mod:`chimera_assets.ingest.prune` for what counts as stale and what applying does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_prune_parser(sub) -> None:
    p = sub.add_parser("prune", help="list (default) or delete (--apply) raw rows whose source files are gone")
    p.add_argument("--landing-dir", type=Path, help="the landing directory (default: CHIMERA_LANDING_DIR)")
    p.add_argument("--apply", action="store_true", help="delete them (without it: a dry run that only prints)")


def cmd_prune(args: argparse.Namespace) -> int:
    """Exit 0 when done (or nothing to do), 2 on a bad argument."""
    landing_dir = None  # None: the deployment's landing directory (DatabentoSource)
    if args.landing_dir is not None:
        if not args.landing_dir.is_dir():
            print(f"chimera: error: --landing-dir {args.landing_dir} is not a directory", file=sys.stderr)
            return 2
        landing_dir = str(args.landing_dir.resolve())
    from chimera_assets.ingest.prune import apply_prune, format_prune, plan_prune, recorded_source_dirs
    from chimera_assets.lib.resources import DatabentoSource
    from chimera_assets.settings import get_settings
    from chimera_assets.universe import get_universe
    from chimera_assets.warehouse import get_warehouse

    source = DatabentoSource(landing_dir=landing_dir)
    dirs = [source.landing_path(), source.api_cache_path()]
    wh = get_warehouse(get_settings())
    dirs = recorded_source_dirs(wh, dirs)
    universe = get_universe()
    from chimera_assets.ingest.prune_lineage import apply_derived, format_derived, plan_derived

    plans = plan_prune(wh, universe, dirs)
    # Lineage: the derived partitions built from the raw partitions re-derived here.
    keys = {(d, r) for tp in plans for d, r in tp.stale.select("d", "r").unique().rows()}
    derived = plan_derived(wh, universe, keys)
    print(f"chimera prune: warehouse={wh!r}; sources present in {', '.join(str(d) for d in dirs)}")
    if args.apply and plans:
        apply_derived(wh, derived)  # first: an interrupted prune never leaves derived rows without a source
        apply_prune(wh, universe, dirs, plans)
    print(format_prune(plans, applied=args.apply))
    for line in format_derived(derived, applied=args.apply):
        print(line)
    return 0
