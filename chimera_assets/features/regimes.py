"""Market regimes (SPEC 6.4 "regime", 6.6): YAML config -> ``training.regime_calendar`` / ``regime_weights``.

Pure polars + PyYAML + pydantic (the file is parsed by strict models: unknown keys refused), no Dagster. A regime is a closed date interval [start, end] with an integer
weight on a 50-1000 scale. Any day outside every regime belongs to the ``baseline`` fallback
(weight 100 unless the YAML says otherwise). Regimes may not overlap; every validation failure raises
:class:`RegimeConfigError` with the offending names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)

from chimera_assets.config_yaml import STRICT, STRICT_VALUE, describe_validation_error, name_at
from chimera_assets.schemas import REGIME_CALENDAR, REGIME_WEIGHTS

DEFAULT_REGIMES_PATH = Path(__file__).resolve().parent.parent / "config" / "regimes.yaml"
DEFAULT_CALENDAR_START = date(1998, 1, 1)
DEFAULT_CALENDAR_END = date(2029, 12, 31)
BASELINE_NAME = "baseline"
BASELINE_WEIGHT = 100
MIN_WEIGHT = 50
MAX_WEIGHT = 1000

_NAME_RE = re.compile(r"[a-z0-9_]+")

# The columns of training.regime_calendar / regime_weights (declared in schemas.py).
CALENDAR_SCHEMA: dict[str, pl.DataType] = REGIME_CALENDAR.polars_schema()
WEIGHTS_SCHEMA: dict[str, pl.DataType] = REGIME_WEIGHTS.polars_schema()


class RegimeConfigError(ValueError):
    """The regime configuration is invalid (bad name, date, weight, unknown key or overlap)."""


@dataclass(frozen=True)
class Regime:
    """One regime. ``start``/``end`` are inclusive calendar dates; both are None for the baseline."""

    name: str
    start: date | None
    end: date | None
    weight: int
    description: str = ""

    @property
    def is_baseline(self) -> bool:
        return self.start is None


DEFAULT_BASELINE = Regime(
    BASELINE_NAME, None, None, BASELINE_WEIGHT, "Fallback for dates outside every regime."
)


# ======================================================================================================
# loading / validation
# ======================================================================================================
def _iso_date(value: Any, info: ValidationInfo) -> Any:
    """A YAML date, or an ISO ``YYYY-MM-DD`` string (quoted dates are accepted); never a timestamp."""
    if isinstance(value, datetime):
        raise ValueError(f"{info.field_name} {value!r} must be a date (YYYY-MM-DD), not a timestamp")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    return value


def _text(value: Any) -> Any:
    return "" if value is None else value


# The rules of a regime, declared once: the YAML models and validate_regimes (regimes built in code) use them.
_Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]
_Weight = Annotated[int, Field(ge=MIN_WEIGHT, le=MAX_WEIGHT)]
_Date = Annotated[date, BeforeValidator(_iso_date)]
_Description = Annotated[str, BeforeValidator(_text), AfterValidator(str.strip)]
_NAME = TypeAdapter(_Name, config=STRICT_VALUE)
_WEIGHT = TypeAdapter(_Weight, config=STRICT_VALUE)


class _RegimeEntry(BaseModel):
    model_config = STRICT
    name: _Name
    start: _Date
    end: _Date
    weight: _Weight
    description: _Description = ""  # start <= end is a rule of validate_regimes (also for code-built ones)


class _BaselineEntry(BaseModel):
    model_config = STRICT
    name: _Name = BASELINE_NAME
    weight: _Weight = BASELINE_WEIGHT
    description: _Description = DEFAULT_BASELINE.description


class _RegimesFile(BaseModel):
    model_config = STRICT
    regimes: list[_RegimeEntry]
    baseline: _BaselineEntry | None = None


_PHRASES = {
    "name": "must match [a-z0-9_]+",
    "weight": f"must be an integer in {MIN_WEIGHT}..{MAX_WEIGHT}",
    "start": "is not a date (YYYY-MM-DD)",
    "end": "is not a date (YYYY-MM-DD)",
    "description": "must be text",
    "regimes": "must be a list of regimes",
}


def _describe(exc: ValidationError, doc: Any) -> str:
    def where(loc: tuple[str | int, ...]) -> str:
        if loc[:1] == ("baseline",):
            return "baseline"
        if len(loc) >= 2 and loc[0] == "regimes":
            name = name_at(doc, loc[:2])
            return f"regime {name!r}" if isinstance(name, str) and _NAME_RE.fullmatch(name) else f"regimes[{loc[1]}]"
        return ""

    return describe_validation_error(exc, where, _PHRASES)


def _check(adapter: TypeAdapter, value: Any, where: str, key: str) -> None:
    try:
        adapter.validate_python(value)
    except ValidationError:
        raise RegimeConfigError(f"{where}: {key} {value!r} {_PHRASES[key]}") from None


def validate_regimes(regimes: Sequence[Regime]) -> tuple[list[Regime], Regime]:
    """Split into (dated regimes sorted by start, baseline) and enforce the invariants.

    Raises :class:`RegimeConfigError` on an invalid name/weight/interval, duplicate names, more than one
    baseline, or two overlapping regimes (the message names both). Without a baseline entry the default
    one (``baseline``, weight 100) is used.
    """
    dated: list[Regime] = []
    baselines: list[Regime] = []
    for r in regimes:
        where = f"regime {r.name!r}"
        _check(_NAME, r.name, where, "name")
        _check(_WEIGHT, r.weight, where, "weight")
        if (r.start is None) != (r.end is None):
            raise RegimeConfigError(
                f"{where}: start and end must both be set (or both empty for the baseline)"
            )
        if r.start is None:
            baselines.append(r)
        else:
            assert r.end is not None
            if r.start > r.end:
                raise RegimeConfigError(f"{where}: start {r.start} is after end {r.end}")
            dated.append(r)
    if len(baselines) > 1:
        raise RegimeConfigError(f"more than one baseline regime: {[b.name for b in baselines]}")
    baseline = baselines[0] if baselines else DEFAULT_BASELINE
    names = [r.name for r in dated] + [baseline.name]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RegimeConfigError(f"duplicate regime name(s): {dupes}")
    dated.sort(key=lambda r: (r.start, r.end))
    # Sorted by start, an overlap always shows between some regime and the one ending latest before it.
    latest: Regime | None = None
    for r in dated:
        if latest is not None and r.start <= latest.end:  # type: ignore[operator]
            raise RegimeConfigError(
                f"regimes {latest.name!r} ({latest.start}..{latest.end}) and {r.name!r} "
                f"({r.start}..{r.end}) overlap"
            )
        if latest is None or r.end > latest.end:  # type: ignore[operator]
            latest = r
    return dated, baseline


def load_regimes(path: Path | str | None = None) -> list[Regime]:
    """Read and validate the regimes YAML (default: the package's ``config/regimes.yaml``).

    Returns the dated regimes sorted by start, followed by the baseline regime (``start``/``end`` None).
    Raises :class:`RegimeConfigError` for an unreadable file, bad YAML, or any rule of
    :func:`validate_regimes` (names ``[a-z0-9_]+``, ISO dates, start <= end, integer weight 50..1000,
    no overlaps, no unknown keys).
    """
    p = Path(path) if path is not None else DEFAULT_REGIMES_PATH
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RegimeConfigError(f"regimes file {p}: cannot read ({type(exc).__name__}: {exc})") from exc
    except ValueError as exc:  # PyYAML builds dates while parsing: 2020-02-30 fails here, not in our checks
        raise RegimeConfigError(f"regimes file {p}: invalid value, not a date? ({exc})") from exc
    try:
        parsed = _RegimesFile.model_validate(doc)
    except ValidationError as exc:
        raise RegimeConfigError(f"regimes file {p}: {_describe(exc, doc)}") from None
    base = parsed.baseline or _BaselineEntry()
    entries = [Regime(e.name, e.start, e.end, e.weight, e.description) for e in parsed.regimes]
    try:
        dated, baseline = validate_regimes([*entries, Regime(base.name, None, None, base.weight, base.description)])
    except RegimeConfigError as exc:
        raise RegimeConfigError(f"regimes file {p}: {exc}") from None
    return [*dated, baseline]


# ======================================================================================================
# tables
# ======================================================================================================
def _regime_frame(dated: Sequence[Regime]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "regime": [r.name for r in dated],
            "valid_from": [r.start for r in dated],
            "valid_to": [r.end for r in dated],
            "weight": [r.weight for r in dated],
        },
        schema={"regime": pl.Utf8, "valid_from": pl.Date, "valid_to": pl.Date, "weight": pl.Int64},
    )


def _assign(dated: Sequence[Regime], baseline: Regime, days: pl.DataFrame) -> pl.DataFrame:
    """Attach regime, valid_from, valid_to, weight to a frame with a sorted, non-null ``date`` column."""
    reg = _regime_frame(dated)
    hit = days.join_asof(
        reg, left_on="date", right_on="valid_from", strategy="backward", check_sortedness=False
    )
    inside = pl.col("valid_to").is_not_null() & (pl.col("date") <= pl.col("valid_to"))
    # Baseline gap bounds: the day after the previous regime ends .. the day before the next one starts.
    nxt = reg.select(pl.col("valid_from").alias("next_start"))
    hit = hit.join_asof(
        nxt, left_on="date", right_on="next_start", strategy="forward", check_sortedness=False
    )
    return hit.select(
        "date",
        pl.when(inside).then(pl.col("regime")).otherwise(pl.lit(baseline.name)).alias("regime"),
        pl.when(inside)
        .then(pl.col("valid_from"))
        .otherwise(pl.col("valid_to") + timedelta(days=1))
        .alias("valid_from"),
        pl.when(inside)
        .then(pl.col("valid_to"))
        .otherwise(pl.col("next_start") - timedelta(days=1))
        .alias("valid_to"),
        pl.when(inside)
        .then(pl.col("weight"))
        .otherwise(pl.lit(baseline.weight))
        .cast(pl.Int64)
        .alias("weight"),
    )


def build_regime_calendar(
    regimes: Sequence[Regime], start: date = DEFAULT_CALENDAR_START, end: date = DEFAULT_CALENDAR_END
) -> pl.DataFrame:
    """``training.regime_calendar``: one row per calendar day in [start, end] (both inclusive).

    Columns ``date, regime, valid_from, valid_to`` (Date, Utf8, Date, Date). Inside a regime,
    valid_from/valid_to are the regime's own bounds (not clipped to [start, end]). On a baseline day they
    are the bounds of the gap between regimes: the day after the previous regime ends and the day before
    the next one starts, NULL when there is no regime on that side (open-ended gap). The values do not
    depend on the requested range. Raises ValueError if start > end, RegimeConfigError on invalid regimes.
    """
    if start > end:
        raise ValueError(f"calendar start {start} is after end {end}")
    dated, baseline = validate_regimes(regimes)
    days = pl.date_range(start, end, "1d", eager=True).alias("date").to_frame()
    return _assign(dated, baseline, days).select(list(CALENDAR_SCHEMA))


def build_regime_weights(regimes: Sequence[Regime]) -> pl.DataFrame:
    """``training.regime_weights``: ``regime, weight (Int64, 50..1000), description``; dated regimes by
    start, then the baseline row."""
    dated, baseline = validate_regimes(regimes)
    rows = [*dated, baseline]
    return pl.DataFrame(
        {
            "regime": [r.name for r in rows],
            "weight": [r.weight for r in rows],
            "description": [r.description for r in rows],
        },
        schema=WEIGHTS_SCHEMA,
    )


def regime_for_dates(regimes: Sequence[Regime], dates: pl.Series | Sequence[date]) -> pl.DataFrame:
    """Regime of each date: ``date, regime_name, regime_weight`` (Int64), same length and order as
    ``dates`` (duplicates kept). A NULL date gets NULL name and weight. Vectorised (one join_asof)."""
    s = dates if isinstance(dates, pl.Series) else pl.Series("date", list(dates), dtype=pl.Date)
    s = s.cast(pl.Date).alias("date")
    dated, baseline = validate_regimes(regimes)
    frame = s.to_frame().with_row_index("_row")
    known = frame.select("date").drop_nulls().unique().sort("date")
    assigned = _assign(dated, baseline, known)
    out = frame.join(
        assigned.select(
            "date", pl.col("regime").alias("regime_name"), pl.col("weight").alias("regime_weight")
        ),
        on="date",
        how="left",
    )
    return out.sort("_row").select("date", "regime_name", pl.col("regime_weight").cast(pl.Int64))


__all__ = [
    "BASELINE_NAME",
    "BASELINE_WEIGHT",
    "CALENDAR_SCHEMA",
    "DEFAULT_CALENDAR_END",
    "DEFAULT_CALENDAR_START",
    "DEFAULT_REGIMES_PATH",
    "WEIGHTS_SCHEMA",
    "Regime",
    "RegimeConfigError",
    "build_regime_calendar",
    "build_regime_weights",
    "load_regimes",
    "regime_for_dates",
    "validate_regimes",
]
