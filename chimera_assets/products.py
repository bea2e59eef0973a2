"""The product table: per CME root its exchange, asset class, exchange calendar and scheduled close.

Loaded from ``config/products.yaml`` (the facts and how each row was checked are written there). The
universe takes a root's ``calendar`` and ``session_close`` from here when its entry leaves them out,
and ``chimera universe init`` writes them into a user's universe.yaml. Pure (PyYAML + pydantic).

``session_close`` is America/Chicago wall-clock time of the regular session's end (13:20 for CBOT
grains, 16:00 for CME Globex equity index / FX / rates / energy / metals); the calendar's early
closes (holiday sessions) win over it wherever it is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, ValidationError

from chimera_assets.config_yaml import STRICT, describe_validation_error, load_unique_yaml

PRODUCTS_PATH = Path(__file__).parent / "config" / "products.yaml"
ASSET_CLASSES = ("equity_index", "fx", "interest_rate", "energy", "metals", "crypto", "grains", "livestock",
                 "dairy", "lumber", "softs")
EXCHANGES = ("CME", "CBOT", "NYMEX", "COMEX")
# A root as the exchange writes it: 1-6 upper-case letters/digits with at least one letter, any first
# character ("6E", "10Y", "SR3", "MES"); 6 is the longest root the symbol parser (trade_calendar) reads.
ROOT_NAME = r"^[A-Z0-9]*[A-Z][A-Z0-9]*$"
ROOT_MAX_LEN = 6
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ProductTableError(ValueError):
    """The product table (or a ``session_close`` value) is invalid; the message names the input."""


def parse_close(value: Any) -> time:
    """``"13:20"`` (HH:MM, 24 h, America/Chicago) or a ``datetime.time`` -> ``time``.

    An integer is refused with a hint: YAML 1.1 reads an unquoted ``13:20`` as the base-60 integer 800,
    so the value must be written quoted. Raises ValueError naming the value."""
    if isinstance(value, time):
        return value
    if isinstance(value, bool) or isinstance(value, int):
        raise ValueError(f"{value!r} is not a time; write it quoted as \"HH:MM\" (YAML reads an unquoted "
                         "13:20 as the number 800)")
    if isinstance(value, str) and (m := _HHMM.match(value.strip())):
        return time(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"{value!r} is not a time of day (write \"HH:MM\", 24-hour, America/Chicago)")


_Close = Annotated[time, BeforeValidator(parse_close)]
_Root = Annotated[str, StringConstraints(pattern=ROOT_NAME, max_length=ROOT_MAX_LEN)]


@dataclass(frozen=True)
class Product:
    root: str
    name: str
    exchange: str
    asset_class: str
    calendar: str
    session_close: time
    verified: str


class _ProductRow(BaseModel):
    model_config = STRICT
    name: str = Field(min_length=1)
    exchange: Literal[EXCHANGES]
    asset_class: Literal[ASSET_CLASSES]
    calendar: str
    close: _Close
    verified: Literal["batch", "spec"]


class _ProductFile(BaseModel):
    model_config = STRICT
    products: dict[_Root, _ProductRow] = Field(min_length=1)


@lru_cache(maxsize=1)
def known_calendars() -> frozenset[str]:
    """Calendar names pandas_market_calendars knows (e.g. CME_Agriculture, CME_Equity); cached."""
    import pandas_market_calendars as mcal

    return frozenset(mcal.get_calendar_names())


def _where(loc: tuple[str | int, ...]) -> str:
    return f"product {loc[1]}" if len(loc) >= 2 and loc[0] == "products" else ""


def load_products(path: Path | str | None = None) -> dict[str, Product]:
    """Parse and validate a product table (default: the packaged one): root -> :class:`Product`.

    Every problem is named in one ProductTableError (file, root, key), including calendars that
    pandas_market_calendars does not know."""
    path = Path(path) if path else PRODUCTS_PATH
    try:
        raw = load_unique_yaml(path.read_text(encoding="utf-8"))
        parsed = _ProductFile.model_validate(raw)
    except ValidationError as exc:
        raise ProductTableError(f"invalid product table {path}: {describe_validation_error(exc, _where)}") from None
    except (OSError, ValueError) as exc:  # missing file, YAML error, duplicate key
        raise ProductTableError(f"invalid product table {path}: {exc}") from None
    calendars = known_calendars()
    unknown = {r: p.calendar for r, p in parsed.products.items() if p.calendar not in calendars}
    if unknown:
        raise ProductTableError(f"invalid product table {path}: unknown pandas_market_calendars calendar(s) {unknown}")
    return {
        r: Product(r, p.name, p.exchange, p.asset_class, p.calendar, p.close, p.verified)
        for r, p in parsed.products.items()
    }


@lru_cache(maxsize=4)
def _cached(path: str) -> dict[str, Product]:
    return load_products(path)


def get_products() -> dict[str, Product]:
    """The packaged product table, loaded once per process."""
    return _cached(str(PRODUCTS_PATH))


def product(root: str) -> Product | None:
    """The packaged table's row for ``root`` (exact, upper-case), or None when the root is not in it."""
    return get_products().get(root)
