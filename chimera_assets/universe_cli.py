"""``chimera universe``: configure the universe from the data a user has.

    chimera universe init --from ../shared/data/databento-batch             # -> $CHIMERA_HOME/universe.yaml
    chimera universe init --from DIR --out my_universe.yaml                  # another file (kept entries stay)
    chimera universe init --from DIR --out -                                 # print, write nothing
    chimera universe products                                                # the product table

``init`` lists the roots the files hold (first and last trade date with bars), writes an entry per root
of the product table (its calendar and session close, the data's first trade date as ``start``), writes
roots the table does not know commented out with the reason, and keeps every entry the file already has.
The file is validated as a universe before it replaces the old one (written atomically).
Exit status: 0 on success, 2 on a bad argument or input (one message naming it; nothing is written).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE = 0, 2


def add_universe_parser(sub) -> None:
    uni = sub.add_parser("universe", help="configure the universe (universe.yaml) from landing files")
    usub = uni.add_subparsers(dest="universe_command", required=True)
    init = usub.add_parser("init", help="write universe.yaml entries for the roots of a landing directory")
    init.add_argument("--from", dest="landing_dir", type=Path, required=True,
                      help="directory of Databento DBN files (.dbn / .dbn.zst), e.g. a portal batch folder")
    init.add_argument("--out", default=None,
                      help="universe file to write (default $CHIMERA_HOME/universe.yaml; '-' prints it)")
    usub.add_parser("products", help="list chimera's product table (root, exchange, class, calendar, close)")


def _fail(msg: str) -> int:
    print(f"chimera universe: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _default_out() -> Path:
    from chimera_assets.settings import get_settings

    return get_settings().home / "universe.yaml"


def cmd_products() -> int:
    from chimera_assets.products import get_products

    print(f"{'root':5s} {'exchange':8s} {'class':14s} {'calendar':26s} close  name")
    for p in get_products().values():
        print(f"{p.root:5s} {p.exchange:8s} {p.asset_class:14s} {p.calendar:26s} {p.session_close:%H:%M}  {p.name}")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from chimera_assets.products import get_products
    from chimera_assets.universe import UniverseConfigError, load_universe
    from chimera_assets.universe_init import UniverseInitError, describe, render_universe, scan_landing

    to_stdout = args.out == "-"
    out = None if to_stdout else Path(args.out).expanduser() if args.out else _default_out()
    existing = existing_roots = None
    if out is not None and out.exists():
        try:
            current = load_universe(out)  # refuse to build on a broken file: say what is wrong with it
        except UniverseConfigError as exc:
            return _fail(f"{exc} (fix it, or write to another file with --out)")
        existing, existing_roots = out.read_text(encoding="utf-8"), current.root_names
    try:
        scan = scan_landing(args.landing_dir)
        if existing is not None and scan.dataset and current.dataset != scan.dataset:
            return _fail(f"{out} is for dataset {current.dataset}, the files in {args.landing_dir} are {scan.dataset}")
        result = render_universe(scan, existing, existing_roots or ())
    except UniverseInitError as exc:
        return _fail(str(exc))
    log = sys.stderr if to_stdout else sys.stdout
    products = get_products()
    print(f"{len(scan.roots)} root(s) in {scan.files} file(s) of {scan.landing_dir} ({scan.dataset}):", file=log)
    for root in sorted(scan.roots, key=lambda r: (r not in products, r)):
        rs = scan.roots[root]
        status = ("kept" if root in result.kept else "added" if root in result.added
                  else "commented out (not in the product table)" if root in result.commented else "unchanged")
        cal = products[root].calendar if root in products else "-"
        print(f"  {root:5s} {str(rs.first or '-'):10s} {str(rs.last or '-'):10s} {rs.trade_dates:5d} days  "
              f"{cal:26s} {status}; {describe(rs, products.get(root))}", file=log)
    for path, why in scan.unreadable:
        print(f"  skipped unreadable file {path}: {why}", file=log)
    if scan.unparseable:
        print(f"  symbols that name no futures root (ignored): {scan.unparseable[:10]}", file=log)
    if to_stdout:
        sys.stdout.write(result.text)
        return EXIT_OK
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(result.text, encoding="utf-8")
    try:
        load_universe(tmp)  # what we write must load: a bug here must not replace a working file
    except UniverseConfigError as exc:
        tmp.unlink()
        return _fail(f"the written universe does not load ({exc}); {out} is unchanged")
    os.replace(tmp, out)
    print(f"wrote {out}: {len(result.added)} root(s) added, {len(result.kept)} kept, "
          f"{len(result.commented)} commented out")
    print(f"use it with:  export CHIMERA_UNIVERSE={out}")
    return EXIT_OK


def cmd_universe(args: argparse.Namespace) -> int:
    if args.universe_command == "products":
        return cmd_products()
    return cmd_init(args)
