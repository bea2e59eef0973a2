"""The universe: which roots exist, what Databento series feed them, which features apply.

Loaded from ``config/universe.yaml`` (or ``CHIMERA_UNIVERSE``). Root names end up in partition
keys, table filters and file names, so they are validated here once: letters and digits only.
The file is checked completely when it loads, before anything is read or written: a duplicate key
(YAML would silently keep the last), a non-boolean ``golden_zone`` (``"false"`` is a true string)
and an unknown ``calendar`` are refused, each error naming the file, the root and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml

ROOT_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
SERIES_PATTERN = re.compile(r"^[A-Za-z0-9]+(\.(v|c|n)\.\d+|\.FUT|\.OPT)?$")
KNOWN_SCHEMAS = ("ohlcv-1m", "ohlcv-1h", "ohlcv-1d", "statistics", "definition")
DEFAULT_UNIVERSE_PATH = Path(__file__).parent / "config" / "universe.yaml"


class UniverseConfigError(ValueError):
    """The universe YAML is invalid; the message names the file and the offending entry."""


@dataclass(frozen=True)
class RootConfig:
    root: str
    series: tuple[str, ...]
    statistics_series: tuple[str, ...]
    schemas: tuple[str, ...]
    start: date
    golden_zone: bool
    calendar: str


@dataclass(frozen=True)
class Universe:
    path: Path
    dataset: str
    roots: dict[str, RootConfig]

    @property
    def root_names(self) -> list[str]:
        return list(self.roots)

    @property
    def golden_zone_roots(self) -> set[str]:
        return {r for r, c in self.roots.items() if c.golden_zone}

    def require_roots(self, names: list[str]) -> list[str]:
        """Return ``names`` upper-cased and de-duplicated (first occurrence wins: ``ZL,zl`` is one
        root, so its stages run once), raising one clear error for any unknown root."""
        wanted = list(dict.fromkeys(n.strip().upper() for n in names if n.strip()))
        unknown = [n for n in wanted if n not in self.roots]
        if unknown:
            raise UniverseConfigError(
                f"unknown root(s) {unknown}; the universe {self.path} has {self.root_names}"
            )
        return wanted

    def root_of_series(self, series: str) -> str | None:
        for root, cfg in self.roots.items():
            if series in cfg.series or series in cfg.statistics_series:
                return root
        return None


def _fail(path: Path, msg: str) -> UniverseConfigError:
    return UniverseConfigError(f"invalid universe file {path}: {msg}")


class _DuplicateKey(ValueError):
    def __init__(self, key: object, line: int):
        super().__init__(f"duplicate key {key!r} (line {line})")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def known_calendars() -> set[str]:
    """Calendar names pandas_market_calendars knows (e.g. CME_Agriculture, CME_Equity)."""
    import pandas_market_calendars as mcal

    return set(mcal.get_calendar_names())


def load_universe(path: Path | str | None = None) -> Universe:
    """Parse and validate a universe YAML (default: the packaged one)."""
    path = Path(path) if path else DEFAULT_UNIVERSE_PATH
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except FileNotFoundError as exc:
        raise UniverseConfigError(f"universe file {path} does not exist") from exc
    except _DuplicateKey as exc:
        raise _fail(path, str(exc)) from exc
    except yaml.YAMLError as exc:
        raise _fail(path, f"not valid YAML ({exc})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("roots"), dict) or not raw["roots"]:
        raise _fail(path, "expected a mapping with a non-empty 'roots' mapping")
    roots: dict[str, RootConfig] = {}
    calendars = known_calendars()
    for name, cfg in raw["roots"].items():
        if not isinstance(name, str) or not ROOT_PATTERN.match(name):
            raise _fail(path, f"root name {name!r} must be 1-10 upper-case letters/digits starting with a letter")
        cfg = cfg or {}
        if not isinstance(cfg, dict):
            raise _fail(path, f"root {name}: expected a mapping of settings, got {cfg!r}")
        series = tuple(cfg.get("series") or (f"{name}.v.0",))
        stats = tuple(cfg.get("statistics_series") or (f"{name}.FUT",))
        for s in series + stats:
            if not isinstance(s, str) or not SERIES_PATTERN.match(s):
                raise _fail(path, f"root {name}: series symbol {s!r} is not a valid Databento symbol")
        schemas = tuple(cfg.get("schemas") or ("ohlcv-1h",))
        bad = [s for s in schemas if s not in KNOWN_SCHEMAS]
        if bad:
            raise _fail(path, f"root {name}: unknown schema(s) {bad}; known: {list(KNOWN_SCHEMAS)}")
        start = cfg.get("start", date(2010, 6, 7))
        if not isinstance(start, date):
            raise _fail(path, f"root {name}: start {start!r} is not a date (YYYY-MM-DD)")
        golden = cfg.get("golden_zone", False)
        if not isinstance(golden, bool):
            raise _fail(path, f"root {name}: golden_zone {golden!r} is not a boolean (write true or false, unquoted)")
        calendar = cfg.get("calendar", "CME_Agriculture")
        if not isinstance(calendar, str) or calendar not in calendars:
            cme = sorted(c for c in calendars if c.upper().startswith("CME"))
            raise _fail(path, f"root {name}: unknown calendar {calendar!r}; pandas_market_calendars knows e.g. {cme}")
        roots[name] = RootConfig(
            root=name,
            series=series,
            statistics_series=stats,
            schemas=schemas,
            start=start,
            golden_zone=golden,
            calendar=calendar,
        )
    return Universe(path=path, dataset=str(raw.get("dataset", "GLBX.MDP3")), roots=roots)


@lru_cache(maxsize=8)
def _cached(path: str) -> Universe:
    return load_universe(path)


def get_universe(path: Path | str | None = None) -> Universe:
    """The universe for ``path`` or the settings' universe file, cached per path."""
    if path is None:
        from chimera_assets.settings import get_settings

        path = get_settings().universe_path
    return _cached(str(path))
