"""The universe: which roots exist, what Databento series feed them, which features apply.

Loaded from ``config/universe.yaml`` (or ``CHIMERA_UNIVERSE``). Root names end up in partition
keys, table names, file names and CLI arguments, so they are validated here once: the exchange's
own spelling, 1-6 upper-case letters/digits with at least one letter, any first character (``ES``,
``6E``, ``10Y``, ``SR3``). SQL never pastes one unquoted (schemas/warehouse quote every identifier).
The file is checked completely when it loads, before anything is read or written, by a strict
pydantic model (``_UniverseFile``: unknown keys refused, no coercion): a duplicate key (YAML would
silently keep the last), a misspelt setting, a non-boolean ``golden_zone`` (``"false"`` is a true
string), an unknown ``calendar``, a root without a calendar that the product table does not know,
and two roots sharing one series are refused, each error naming the file, the root and the key.
``start`` may be a YAML date or an ISO ``"YYYY-MM-DD"`` string (many YAML writers quote dates).
A root's ``calendar`` and ``session_close`` default to the product table's (``products.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from chimera_assets.config_yaml import STRICT, DuplicateKeyError, describe_validation_error, load_unique_yaml
from chimera_assets.products import ROOT_MAX_LEN, ROOT_NAME, get_products, known_calendars, parse_close

# Python-re form of products.ROOT_NAME with its length (partition keys, table names, CLI arguments).
ROOT_PATTERN = re.compile(rf"^(?=[A-Z0-9]{{1,{ROOT_MAX_LEN}}}$){ROOT_NAME[1:]}")
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
    # The root's regular scheduled session close, America/Chicago wall clock (e.g. 13:20 for grains,
    # 16:00 for equity index). None = the calendar's own market_close. Early closes of the calendar
    # always win over it (a 12:00 holiday close stays 12:00).
    session_close: time | None = None
    # Session completeness tolerance per source frequency ("1m", "1h") for this root, overriding the
    # universe's (SPEC 6.3): how long before the scheduled close its last bar may end.
    session_tolerance: dict[str, timedelta] | None = None


@dataclass(frozen=True)
class Universe:
    path: Path
    dataset: str
    roots: dict[str, RootConfig]
    #: Session completeness tolerance per source frequency ("1m", "1h"); None = session_state's default.
    session_tolerance: dict[str, timedelta] | None = None

    def tolerance_of(self, root: str) -> dict[str, timedelta]:
        """The completeness tolerances that apply to ``root`` (its own over the universe's)."""
        return {**(self.session_tolerance or {}), **(self.roots[root].session_tolerance or {})}

    @property
    def root_names(self) -> list[str]:
        return list(self.roots)

    @property
    def golden_zone_roots(self) -> set[str]:
        return {r for r, c in self.roots.items() if c.golden_zone}

    def root_blocks(self, roots: Iterable[str]) -> list[list[str]]:
        """``roots`` grouped into runs of neighbours in universe order, each run in that order: a
        Dagster partition range over the symbol dimension is a rectangle, so each run is one range.
        Duplicates are ignored; a root outside the universe raises ValueError."""
        order = self.root_names
        runs: list[list[int]] = []
        for i in sorted({order.index(r) for r in roots}):
            if runs and i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        return [[order[i] for i in run] for run in runs]

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


def _iso_date(value: Any) -> Any:
    """A YAML date, or an ISO ``YYYY-MM-DD`` string (quoted dates are accepted); never a timestamp."""
    if isinstance(value, datetime):
        raise ValueError(f"start {value!r} must be a date (YYYY-MM-DD), not a timestamp")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass  # left as the string: the strict date check names it ("is not a date")
    return value


def _close(value: Any) -> Any:
    try:
        return parse_close(value)
    except ValueError as exc:
        raise ValueError(f"session_close {exc}") from None


_RootName = Annotated[str, StringConstraints(pattern=ROOT_NAME, max_length=ROOT_MAX_LEN)]
_Series = Annotated[str, StringConstraints(pattern=SERIES_PATTERN.pattern)]


class _RootFile(BaseModel):
    """One root's settings as written in the YAML (an absent or empty list takes the default)."""

    model_config = STRICT
    series: list[_Series] | None = None
    statistics_series: list[_Series] | None = None
    schemas: list[Literal[KNOWN_SCHEMAS]] | None = None
    start: Annotated[date, BeforeValidator(_iso_date)] = date(2010, 6, 7)
    golden_zone: bool = False
    # None = the product table's calendar / regular close for this root.
    calendar: str | None = None
    session_close: Annotated[time, BeforeValidator(_close)] | None = None
    # Minutes per source frequency, e.g. {1h: 240} for a root that rarely trades near its close.
    session_tolerance_minutes: dict[Literal["1m", "1h"], Annotated[int, Field(ge=0, le=1440)]] | None = None

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, calendar: str | None, info: ValidationInfo) -> str | None:
        if calendar is None:
            return None
        calendars = info.context["calendars"]
        if calendar not in calendars:
            cme = sorted(c for c in calendars if c.upper().startswith("CME"))
            raise ValueError(f"unknown calendar {calendar!r}; pandas_market_calendars knows e.g. {cme}")
        return calendar


class _UniverseFile(BaseModel):
    model_config = STRICT
    dataset: str = "GLBX.MDP3"
    # Session completeness tolerance in minutes per source frequency (default: session_state's).
    session_tolerance_minutes: dict[Literal["1m", "1h"], Annotated[int, Field(ge=0, le=1440)]] | None = None
    roots: dict[_RootName, _RootFile | None] = Field(min_length=1)


# The rule each key breaks, in the error message ("root MES: golden_zone 'false' is not a boolean ...").
_PHRASES = {
    "[key]": "root name {value!r} must be 1-6 upper-case letters/digits with at least one letter "
             "(the exchange's spelling, e.g. ES, 6E, 10Y)",
    "roots": "must be a non-empty mapping of root -> settings",
    "series": "is not a valid Databento symbol",
    "statistics_series": "is not a valid Databento symbol",
    "schemas": f"is an unknown schema; known: {list(KNOWN_SCHEMAS)}",
    "start": "is not a date (YYYY-MM-DD)",
    "golden_zone": "is not a boolean (write true or false, unquoted)",
}


def _where(loc: tuple[str | int, ...]) -> str:
    return f"root {loc[1]}" if len(loc) >= 2 and loc[0] == "roots" else ""


def _series_of(name: str, cfg: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(series, statistics_series) of one root with their defaults; ``cfg`` a _RootFile or raw dict."""
    def listed(key: str) -> list[str] | None:
        v = cfg.get(key) if isinstance(cfg, dict) else getattr(cfg, key, None)
        return [str(x) for x in v] if isinstance(v, list) and v else None

    return (tuple(listed("series") or (f"{name}.v.0",)),
            tuple(listed("statistics_series") or (f"{name}.FUT",)))


def _cross_root_problems(roots: Any) -> list[str]:
    """Problems no single entry shows: a root without calendar that the product table lacks, two roots
    sharing one series (its bars could belong to either). Works on the raw YAML mapping too, so the
    same message can name them beside the per-key errors."""
    if not isinstance(roots, dict):
        return []
    products = get_products()
    problems: list[str] = []
    owners: dict[str, list[str]] = {}
    for name, cfg in roots.items():
        if not isinstance(name, str):
            continue
        cfg = cfg or {}
        calendar = cfg.get("calendar") if isinstance(cfg, dict) else getattr(cfg, "calendar", None)
        if calendar is None and name not in products and ROOT_PATTERN.match(name):
            problems.append(
                f"root {name}: no calendar given and {name} is not in chimera's product table "
                f"(chimera_assets/config/products.yaml); add e.g. `calendar: CME_Equity` and `session_close: \"16:00\"`"
            )
        if isinstance(cfg, dict | _RootFile):
            for s in dict.fromkeys(x for part in _series_of(name, cfg) for x in part):
                owners.setdefault(s, []).append(name)
    for s, names in owners.items():
        if len(names) > 1:
            problems.append(f"roots {' and '.join(names)} share the series {s!r} (each series feeds one root)")
    return problems


def _root_config(name: str, cfg: _RootFile) -> RootConfig:
    prod = get_products().get(name)
    series, stats = _series_of(name, cfg)
    return RootConfig(
        root=name,
        series=series,
        statistics_series=stats,
        schemas=tuple(cfg.schemas or ("ohlcv-1h",)),
        start=cfg.start,
        golden_zone=cfg.golden_zone,
        calendar=cfg.calendar or prod.calendar,  # _cross_root_problems refused a root with neither
        session_close=cfg.session_close or (prod.session_close if prod else None),
        session_tolerance=_minutes(cfg.session_tolerance_minutes),
    )


def _minutes(spec: dict[str, int] | None) -> dict[str, timedelta] | None:
    return None if spec is None else {freq: timedelta(minutes=m) for freq, m in spec.items()}


def load_universe(path: Path | str | None = None) -> Universe:
    """Parse and validate a universe YAML (default: the packaged one)."""
    path = Path(path) if path else DEFAULT_UNIVERSE_PATH
    try:
        raw = load_unique_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UniverseConfigError(f"universe file {path} does not exist") from exc
    except DuplicateKeyError as exc:
        raise _fail(path, str(exc)) from exc
    except yaml.YAMLError as exc:
        raise _fail(path, f"not valid YAML ({exc})") from exc
    raw_roots = raw.get("roots") if isinstance(raw, dict) else None
    try:
        parsed = _UniverseFile.model_validate(raw, context={"calendars": known_calendars()})
    except ValidationError as exc:
        problems = [describe_validation_error(exc, _where, _PHRASES), *_cross_root_problems(raw_roots)]
        raise _fail(path, "; ".join(problems)) from None
    if problems := _cross_root_problems(parsed.roots):
        raise _fail(path, "; ".join(problems))
    roots = {name: _root_config(name, cfg or _RootFile()) for name, cfg in parsed.roots.items()}
    return Universe(path=path, dataset=parsed.dataset, roots=roots,
                    session_tolerance=_minutes(parsed.session_tolerance_minutes))


@lru_cache(maxsize=8)
def _cached(path: str) -> Universe:
    return load_universe(path)


def get_universe(path: Path | str | None = None) -> Universe:
    """The universe for ``path`` or the settings' universe file, cached per path."""
    if path is None:
        from chimera_assets.settings import get_settings

        path = get_settings().universe_path
    return _cached(str(path))
