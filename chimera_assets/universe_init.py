"""``chimera universe init``: a landing directory of DBN files -> universe.yaml entries.

Pure (no Dagster). :func:`scan_landing` reads every file's header (symbols, schema, dataset) and decodes
the bar files once to learn, per root, its first and last trade date and how many trade dates have bars
(the records, not the header period: a series can be requested and never trade). :func:`render_universe`
turns that into YAML text: a root of the product table gets an entry with the table's calendar and
session close and the data's first trade date as ``start``; a root the table does not know is written
commented out with the reason; roots the existing file already has are kept exactly as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from chimera_assets.dbn.decode import iter_decoded_chunks
from chimera_assets.dbn.diagnostics import DbnDecodeError
from chimera_assets.ingest.landing import header, list_dbn_files
from chimera_assets.products import Product, get_products
from chimera_assets.trade_calendar import expected_sessions, on_or_after_weekday, root_expr
from chimera_assets.universe import KNOWN_SCHEMAS, ROOT_PATTERN, load_universe

BAR_SCHEMAS = ("ohlcv-1m", "ohlcv-1h", "ohlcv-1d")
PARENT_SUFFIXES = (".FUT", ".OPT")
#: A root whose bars cover fewer of its calendar's sessions than this is marked thin in its comment.
THIN_SHARE = 0.9


class UniverseInitError(ValueError):
    """The landing directory cannot configure a universe; the message names the directory or file."""


@dataclass
class RootScan:
    """What the landing files hold for one root. ``first``/``last``/``trade_dates`` come from the bars
    (None / 0 when the files list the series but hold no bar for it); ``header_start`` is the earliest
    header period start of a file listing it (UTC date)."""

    root: str
    series: set[str] = field(default_factory=set)
    parents: set[str] = field(default_factory=set)
    schemas: set[str] = field(default_factory=set)
    files: int = 0
    header_start: date | None = None
    first: date | None = None
    last: date | None = None
    trade_dates: int = 0
    #: Per intraday frequency ("1h", "1m"): each trade date's last bar end (UTC) -- how close to its
    #: scheduled close the root usually trades (``session_tolerance``).
    last_bar_ends: dict[str, pl.DataFrame] = field(default_factory=dict)


@dataclass
class LandingScan:
    landing_dir: Path
    dataset: str | None
    roots: dict[str, RootScan]
    files: int
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    unparseable: list[str] = field(default_factory=list)


def scan_landing(landing_dir: Path) -> LandingScan:
    """Headers of every DBN file below ``landing_dir`` plus one decode of its bar files.

    Raises UniverseInitError when the directory is missing, holds no readable DBN file, or mixes
    datasets (a universe has one). Unreadable files are listed, not fatal."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        raise UniverseInitError(f"--from {landing_dir} is not a directory")
    paths = list_dbn_files(landing_dir)
    if not paths:
        raise UniverseInitError(f"--from {landing_dir} holds no DBN file (*.dbn, *.dbn.zst)")
    roots: dict[str, RootScan] = {}
    datasets: dict[str, Path] = {}
    unreadable: list[tuple[Path, str]] = []
    unparseable: set[str] = set()
    bar_files: list[tuple[Path, str]] = []
    for p in paths:
        try:
            info = header(p)
        except DbnDecodeError as exc:
            unreadable.append((p, str(exc)))
            continue
        datasets.setdefault(str(info.dataset), p)
        symbols = pl.Series("s", info.symbols, dtype=pl.Utf8)
        parsed = pl.DataFrame({"s": symbols, "root": pl.select(root_expr(pl.lit(symbols))).to_series()})
        unparseable |= set(parsed.filter(pl.col("root").is_null())["s"])
        start = info.start.date() if info.start else None
        for sym, root in parsed.drop_nulls().iter_rows():
            rs = roots.setdefault(root, RootScan(root))
            (rs.parents if sym.endswith(PARENT_SUFFIXES) else rs.series).add(sym)
            rs.schemas.add(str(info.schema))
            if start and (rs.header_start is None or start < rs.header_start):
                rs.header_start = start
        for root in set(parsed["root"].drop_nulls()):
            roots[root].files += 1
        if info.schema in BAR_SCHEMAS:
            bar_files.append((p, str(info.schema)))
    if not roots:
        raise UniverseInitError(f"--from {landing_dir}: no readable DBN file names a futures root "
                                f"({len(unreadable)} unreadable)")
    if len(datasets) > 1:
        raise UniverseInitError(f"--from {landing_dir} mixes datasets {sorted(datasets)} (e.g. "
                                f"{sorted(map(str, datasets.values()))}); a universe has one dataset")
    _add_bar_dates(bar_files, roots, unreadable)
    return LandingScan(landing_dir, next(iter(datasets)), roots, len(paths), unreadable, sorted(unparseable))


_SPAN = {"ohlcv-1m": ("1m", pl.duration(minutes=1)), "ohlcv-1h": ("1h", pl.duration(hours=1))}


def _add_bar_dates(paths: Iterable[tuple[Path, str]], roots: dict[str, RootScan], unreadable: list) -> None:
    """First/last trade date and trade-date count per root, from the bars (one vectorised pass per chunk),
    and per intraday frequency each trade date's last bar end."""
    parts: list[pl.DataFrame] = []
    ends: list[pl.DataFrame] = []
    for p, schema in paths:
        try:
            for chunk in iter_decoded_chunks(p):
                parts.append(chunk.select("symbol", "trade_date").unique())
                if schema in _SPAN:
                    freq, span = _SPAN[schema]
                    ends.append(chunk.group_by("symbol", "trade_date").agg(
                        (pl.col("ts_event").max() + span).alias("end")).with_columns(freq=pl.lit(freq)))
        except DbnDecodeError as exc:
            unreadable.append((p, str(exc)))
    if not parts:
        return
    if ends:
        last = pl.concat(ends).group_by("symbol", "freq", "trade_date").agg(pl.col("end").max())
        for (root, freq), sub in last.group_by("symbol", "freq"):
            if root in roots:
                roots[root].last_bar_ends[freq] = sub.select("trade_date", "end")
    days = pl.concat(parts).unique()
    stats = days.group_by("symbol").agg(
        pl.col("trade_date").min().alias("first"), pl.col("trade_date").max().alias("last"),
        pl.len().alias("n"),
    )
    for root, first, last, n in stats.iter_rows():
        if root in roots:
            roots[root].first, roots[root].last, roots[root].trade_dates = first, last, n


# --- rendering ------------------------------------------------------------------------------------------


def _key(root: str) -> str:
    """The YAML key of a root: quoted when it starts with a digit, so no YAML reader takes it for a number."""
    return f'"{root}"' if root[:1].isdigit() else root


def _flow(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _schemas(rs: RootScan) -> list[str]:
    return [s for s in KNOWN_SCHEMAS if s in rs.schemas]


def describe(rs: RootScan, prod: Product | None) -> str:
    """One line on the root's data: bars span and, if thin, how many calendar sessions have bars."""
    if rs.first is None:
        return f"no bars in the landing files (listed in {rs.files} file(s)): its sessions are gap days"
    text = f"bars {rs.first}..{rs.last} on {rs.trade_dates} trade date(s)"
    if prod is not None:
        sessions = len(expected_sessions(prod.calendar, rs.first, rs.last))
        if sessions and rs.trade_dates < THIN_SHARE * sessions:
            text += f"; thin: {rs.trade_dates} of {sessions} {prod.calendar} sessions have bars (the rest are gap days)"
    return text


#: The share of a root's sessions whose last bar must reach the close within the tolerance written for it.
TOLERANCE_QUANTILE = 0.9


def suggested_tolerance(rs: RootScan, prod: Product) -> dict[str, int]:
    """Per intraday frequency, the completeness tolerance (minutes) the root's own bars need: when fewer
    than ``TOLERANCE_QUANTILE`` of its sessions end within the default tolerance of the scheduled close
    (a root that rarely trades near its close), the gap at that quantile rounded up to the hour; {}
    otherwise (the default holds). Measured on the calendar sessions that have bars."""
    from chimera_assets.features.session_state import DEFAULT_TOLERANCE, session_schedule

    out: dict[str, int] = {}
    for freq, ends in sorted(rs.last_bar_ends.items()):
        keys = ends.select("trade_date").with_columns(symbol=pl.lit(rs.root))
        sched = session_schedule(keys, {rs.root: prod.calendar}, None, {rs.root: prod.session_close})
        gap = (
            sched.filter(pl.col("scheduled")).join(ends, on="trade_date")
            .select(((pl.col("session_close") - pl.col("end")).dt.total_minutes()).alias("gap"))["gap"]
        )
        if gap.is_empty():
            continue
        at = gap.quantile(TOLERANCE_QUANTILE, interpolation="higher")
        default = DEFAULT_TOLERANCE[freq].total_seconds() / 60
        if at is not None and at > default:
            out[freq] = int(-(-at // 60) * 60)
    return out


def entry_lines(rs: RootScan, prod: Product | None) -> list[str]:
    """The YAML lines of one root (indented two spaces under ``roots:``); commented out when unknown."""
    series = sorted(rs.series) or sorted(rs.parents)
    start = rs.first or on_or_after_weekday(rs.header_start or date(2010, 6, 7))
    body = [f"series: {_flow(series)}"]
    if rs.parents and rs.series:
        body.append(f"statistics_series: {_flow(sorted(rs.parents))}")
    body += [f"schemas: {_flow(_schemas(rs))}", f"start: {start.isoformat()}"]
    if prod is None:
        head = (f"# {_key(rs.root)}:  # not in chimera's product table (no known calendar or session close); "
                f"{describe(rs, None)}. Add calendar: and session_close: \"HH:MM\", then uncomment")
        return [f"  {head}", *(f"  #   {b}" for b in body)]
    body += [f"calendar: {prod.calendar}", f'session_close: "{prod.session_close:%H:%M}"']
    if tol := suggested_tolerance(rs, prod):
        body.append("session_tolerance_minutes: {" + ", ".join(f"{f}: {m}" for f, m in tol.items()) + "}"
                    f"  # its last bar usually ends well before the close (measured, {TOLERANCE_QUANTILE:.0%} of sessions)")
    if rs.root in load_universe().golden_zone_roots:  # the packaged default (MES): same features as the quick start
        body.append("golden_zone: true")
    head = f"{_key(rs.root)}:  # {prod.name} ({prod.exchange}, {prod.asset_class}); {describe(rs, prod)}"
    return [f"  {head}", *(f"    {b}" for b in body)]


@dataclass
class InitResult:
    text: str
    added: list[str]
    kept: list[str]
    commented: list[str]


def _block_roots_last(existing: str) -> bool:
    """True when ``roots:`` is the file's last top-level key in block style (entries can be appended)."""
    top = [ln for ln in existing.splitlines() if ln[:1] not in ("", " ", "#", "\t")]
    return bool(top) and top[-1].rstrip() == "roots:"


def render_universe(scan: LandingScan, existing: str | None = None, existing_roots: Iterable[str] = ()) -> InitResult:
    """The universe.yaml text for ``scan``. ``existing`` (a valid universe file's text, with its roots
    ``existing_roots``) is kept verbatim and the new roots are appended under its ``roots:``; a root
    already written commented out (``# ROOT:``) is not written again."""
    products = get_products()
    kept = [r for r in existing_roots if r in scan.roots]
    order = [r for r in products if r in scan.roots] + sorted(r for r in scan.roots if r not in products)
    new = [r for r in order if r not in set(existing_roots) and ROOT_PATTERN.match(r)]
    commented_before = existing or ""
    lines: list[str] = []
    added, commented = [], []
    for r in new:
        prod = products.get(r)
        if prod is None:
            if f"# {_key(r)}:" in commented_before:
                continue
            commented.append(r)
        else:
            added.append(r)
        lines += entry_lines(scan.roots[r], prod)
    if existing is None:
        head = [
            f"# Written by `chimera universe init --from {scan.landing_dir}`: {len(scan.roots)} root(s) in "
            f"{scan.files} file(s).",
            "# calendar / session_close come from chimera's product table (chimera_assets/config/products.yaml);",
            "# start is the first trade date with bars. Edit freely: a later init keeps every entry written here.",
            f"dataset: {scan.dataset}",
            "roots:",
        ]
        return InitResult("\n".join([*head, *lines]) + "\n", added, kept, commented)
    if not lines:
        return InitResult(existing, added, kept, commented)
    if not _block_roots_last(existing):
        raise UniverseInitError(
            "the existing universe file does not end with a block-style `roots:` mapping, so new entries "
            "cannot be appended without rewriting it; write to a new file with --out"
        )
    text = existing if existing.endswith("\n") else existing + "\n"
    return InitResult(text + "\n".join(lines) + "\n", added, kept, commented)
