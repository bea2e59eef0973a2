"""The product table (chimera_assets/config/products.yaml), row by row.

Each row is held against three sources: the facts it claims (asset class -> the pandas_market_calendars
family and the CME regular close of that class), pandas_market_calendars itself (the calendar exists and
its regular close agrees with the row unless the class is known to trade longer), and, for rows marked
``verified: batch``, the real Databento batch (the last 1h bar of a normal day opens in the hour before
the close).
"""

from __future__ import annotations

from datetime import date, time

import polars as pl
import pytest

from chimera_assets.products import (
    ProductTableError,
    get_products,
    load_products,
    parse_close,
)
from chimera_assets.trade_calendar import calendar_schedule, early_close_sessions
from chimera_assets_tests.conftest import shared_data

# The 84 continuous symbols of the portal batch GLBX-20251216-WEJLAFALCV (its README and file headers).
BATCH_ROOTS = (
    "10Y 2YY 30Y 5YY 6A 6B 6C 6E 6J 6L 6M 6N 6R 6S 6Z ALI BTC BZ CJ CL CPO CU DC DY EMD ES ETH GC GF HE HG HO "
    "KE KT LBR LE M2K M6A M6B M6E MBT MCL MES MET MGC MNQ MYM NG NIY NQ PA PL QG QH QI QM QO QU RB RTY SI SIL "
    "SR1 SR3 TN TT UB XC XK XW YM YO ZB ZC ZF ZL ZM ZN ZO ZQ ZR ZS ZT ZW"
).split()

# What each asset class means on CME Globex (contract specifications): the calendar family it follows
# and its regular close (CT). Rows with another close are listed in CLOSE_EXCEPTIONS with the reason.
CLASS_FACTS: dict[str, tuple[tuple[str, ...], time]] = {
    "equity_index": (("CME_Equity",), time(16)),
    "fx": (("CMEGlobex_FX",), time(16)),
    "interest_rate": (("CME_Bond",), time(16)),
    "energy": (("CMEGlobex_Crude", "CMEGlobex_MicroCrude", "CMEGlobex_HO", "CMEGlobex_RB", "CMEGlobex_NG",
                "CMEGlobex_NatGas", "CMEGlobex_Energy"), time(16)),
    "metals": (("CMEGlobex_Gold", "CMEGlobex_Silver", "CMEGlobex_Copper", "CMEGlobex_Aluminum",
                "CMEGlobex_Platinum", "CMEGlobex_PreciousMetals"), time(16)),
    "crypto": (("CME Globex Crypto",), time(16)),
    "grains": (("CME_Agriculture",), time(13, 20)),
    "livestock": (("CMEGlobex_Livestock",), time(13, 5)),
    "dairy": (("CME_Agriculture",), time(16)),
    "lumber": (("CME_Agriculture",), time(15, 5)),
    "softs": (("CMEGlobex_Energy",), time(16)),  # the NYMEX-listed look-alikes follow the NYMEX calendar
}
CLOSE_EXCEPTIONS = {
    "XC": (time(13, 45), "CBOT mini-sized grains trade to 13:45 CT"),
    "XK": (time(13, 45), "CBOT mini-sized grains trade to 13:45 CT"),
    "XW": (time(13, 45), "CBOT mini-sized grains trade to 13:45 CT"),
}
# Calendars whose own regular close is not the product's (the calendar supplies the holidays only).
CALENDAR_CLOSE_DIFFERS = {"dairy", "lumber"}
NORMAL_WEDNESDAY = date(2024, 7, 10)

PRODUCTS = get_products()


def test_the_table_covers_every_root_of_the_batch():
    assert sorted(set(BATCH_ROOTS) - set(PRODUCTS)) == []
    assert len(BATCH_ROOTS) == 84


def test_the_table_covers_the_batch_headers():
    """The same list, read from the real files' headers (skips without ../shared/data)."""
    from chimera_assets.dbn.header import read_dbn_metadata

    folder = shared_data("databento-batch", "GLBX-20251216-WEJLAFALCV")
    symbols = set()
    for path in sorted(folder.glob("*.dbn.zst")):
        symbols |= set(read_dbn_metadata(path).symbols)
    roots = {s.split(".")[0] for s in symbols}
    assert roots == set(BATCH_ROOTS)
    assert sorted(roots - set(PRODUCTS)) == []


@pytest.mark.parametrize("root", sorted(PRODUCTS))
def test_row_follows_the_facts_of_its_asset_class(root):
    p = PRODUCTS[root]
    calendars, close = CLASS_FACTS[p.asset_class]
    assert p.calendar in calendars, f"{root} ({p.asset_class}) on {p.calendar}, expected one of {calendars}"
    expected = CLOSE_EXCEPTIONS.get(root, (close, ""))[0]
    assert p.session_close == expected, f"{root}: close {p.session_close}, the class closes at {expected}"


@pytest.mark.parametrize("root", sorted(PRODUCTS))
def test_row_agrees_with_pandas_market_calendars(root):
    """The calendar's own regular close (a normal Wednesday) is the row's close, except where the product
    trades past the calendar's day (mini grains, dairy, lumber: the calendar gives holidays only)."""
    p = PRODUCTS[root]
    sched = calendar_schedule(p.calendar, NORMAL_WEDNESDAY, NORMAL_WEDNESDAY)
    assert sched.height == 1, f"{p.calendar} has no session on {NORMAL_WEDNESDAY}"
    cal_close = sched["session_close"].dt.convert_time_zone("America/Chicago").dt.time().item()
    if root in CLOSE_EXCEPTIONS or p.asset_class in CALENDAR_CLOSE_DIFFERS:
        assert cal_close != p.session_close
        assert cal_close < p.session_close, f"{root}: the product closes after its calendar's day"
    else:
        assert cal_close == p.session_close, f"{root}: {p.calendar} closes at {cal_close}, row says {p.session_close}"


@pytest.fixture(scope="module")
def batch_last_bars():
    """Per (root, trade date): the open of the session's last 1h bar, America/Chicago, from the real batch."""
    from chimera_assets.dbn.decode import iter_decoded_chunks

    folder = shared_data("databento-batch", "GLBX-20251216-WEJLAFALCV")
    parts = [c.select("symbol", "trade_date", "ts_event")
             for path in sorted(folder.glob("*.dbn.zst")) for c in iter_decoded_chunks(path)]
    bars = pl.concat(parts)
    return bars.group_by("symbol", "trade_date").agg(
        pl.col("ts_event").max().dt.convert_time_zone("America/Chicago").dt.time().alias("last_open")
    )


@pytest.mark.parametrize("root", sorted(r for r, p in PRODUCTS.items() if p.verified == "batch"))
def test_batch_verified_row_matches_the_bars(root, batch_last_bars):
    """On the calendar's normal (not early-close) sessions, the most common last 1h bar opens in the hour
    before the row's close (16:00 -> the 15:00 bar, 13:20 -> the 13:00 bar, 13:05 -> 13:00)."""
    p = PRODUCTS[root]
    days = batch_last_bars.filter(pl.col("symbol") == root)
    early = set(early_close_sessions(p.calendar, date(2024, 1, 1), date(2025, 12, 31)))
    normal = days.filter(~pl.col("trade_date").is_in(sorted(early)))
    close_minutes = p.session_close.hour * 60 + p.session_close.minute
    expected_hour = (close_minutes - 1) // 60
    mode = normal["last_open"].mode().sort()[0]
    share = (normal["last_open"] == mode).mean()
    print(f"{root}: last bar opens {mode} on {share:.0%} of {normal.height} normal sessions; close {p.session_close}")
    assert mode == time(expected_hour), f"{root}: the last bar usually opens at {mode}, close {p.session_close}"
    assert share >= 0.5


def test_parse_close_accepts_hh_mm_and_refuses_yaml_sexagesimal_with_a_hint():
    assert parse_close("13:20") == time(13, 20) and parse_close(time(16)) == time(16)
    with pytest.raises(ValueError, match="quoted"):
        parse_close(800)  # what YAML 1.1 makes of an unquoted 13:20
    for bad in ("25:00", "1:20pm", "", None):
        with pytest.raises(ValueError, match="not a time"):
            parse_close(bad)


def test_a_bad_table_is_refused_naming_every_problem(tmp_path):
    path = tmp_path / "products.yaml"
    path.write_text(
        "products:\n"
        "  6E: {name: Euro FX, exchange: CME, asset_class: fx, calendar: CMEGlobex_FX, close: 16:00, verified: batch}\n"
        "  zz: {name: Bad, exchange: CME, asset_class: fx, calendar: CMEGlobex_FX, close: \"16:00\", verified: batch}\n"
        "  ES: {name: E-mini, exchange: CME, asset_class: stocks, calendar: CME_Equity, close: \"16:00\", verified: batch}\n"
    )
    with pytest.raises(ProductTableError) as err:
        load_products(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "product 6E" in msg and "quoted" in msg  # 16:00 unquoted is the integer 960
    assert "zz" in msg
    assert "product ES" in msg and "stocks" in msg


def test_an_unknown_calendar_in_the_table_is_refused(tmp_path):
    path = tmp_path / "products.yaml"
    path.write_text("products:\n  ES: {name: E-mini, exchange: CME, asset_class: equity_index, "
                    "calendar: CME_Equities, close: \"16:00\", verified: batch}\n")
    with pytest.raises(ProductTableError, match="CME_Equities"):
        load_products(path)
