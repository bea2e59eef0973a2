"""Every warehouse table, declared once: columns, types, key, partition column, clustering.

Types are BigQuery names (the production dialect); ``duckdb_type``/``polars_dtype``/``arrow_type``
translate them. The logical table names equal the Dagster asset keys (``schema.table``).
"""

from __future__ import annotations

from dataclasses import replace

from chimera_assets.table_spec import (  # noqa: F401 - re-exported: schemas is where tables are looked up
    COLUMN_NAME,
    IDENTIFIER,
    PARTITION_GRANULARITIES,
    SCALAR_TYPES,
    Column,
    S,
    TableSpec,
    check_column_name,
    check_identifier,
)
from chimera_assets.table_spec import (
    cols as _cols,
)

# --- 6.1 raw market data -------------------------------------------------------------------------
_INTRADAY_KEY = ("ts_event", "symbol", "instrument_id")
_INTRADAY = (
    "ts_event TIMESTAMP, trade_date DATE, symbol STRING, series STRING, raw_symbol STRING, "
    "instrument_id INT64, open FLOAT64, high FLOAT64, low FLOAT64, close FLOAT64, volume INT64, "
    "is_spread BOOL, publisher_id INT64, load_id STRING"
)


def _intraday(name: str) -> TableSpec:
    return TableSpec(
        "market_data", name, _cols(_INTRADAY, _INTRADAY_KEY + ("trade_date",)), _INTRADAY_KEY,
        date_column="trade_date", symbol_column="symbol", clustering=("symbol",),
        volatile_columns=("load_id",),
    )


OHLCV_1M = _intraday("databento_futures_ohlcv_1m")
OHLCV_1H = _intraday("databento_futures_ohlcv_1h")
_1D_KEY = ("date", "symbol", "instrument_id")
OHLCV_1D = TableSpec(
    "market_data", "databento_futures_ohlcv_1d",
    _cols(
        "date DATE, symbol STRING, instrument_id INT64, series STRING, raw_symbol STRING, open FLOAT64, "
        "high FLOAT64, low FLOAT64, close FLOAT64, settle FLOAT64, volume INT64, open_interest INT64, "
        "is_spread BOOL, load_id STRING",
        _1D_KEY,
    ),
    _1D_KEY, date_column="date", symbol_column="symbol", clustering=("symbol",), volatile_columns=("load_id",),
)
_STAT_KEY = ("trade_date", "symbol", "instrument_id", "stat_type")
STATISTICS = TableSpec(
    "market_data", "databento_futures_statistics",
    _cols(
        "trade_date DATE, symbol STRING, instrument_id INT64, stat_type INT64, price FLOAT64, quantity INT64, "
        "stat_flags INT64, ts_event TIMESTAMP, ts_recv TIMESTAMP, load_id STRING",
        _STAT_KEY,
    ),
    _STAT_KEY, date_column="trade_date", symbol_column="symbol", clustering=("symbol",),
    volatile_columns=("load_id",),
)
_DEF_KEY = ("instrument_id", "valid_date")
DEFINITIONS = TableSpec(
    "market_data", "databento_definitions",
    _cols(
        "instrument_id INT64, valid_date DATE, raw_symbol STRING, root STRING, series STRING, "
        "instrument_class STRING, expiration TIMESTAMP, min_price_increment FLOAT64, load_id STRING",
        _DEF_KEY,
    ),
    _DEF_KEY, date_column="valid_date", symbol_column="root", clustering=("root",), volatile_columns=("load_id",),
)

# --- 6.2 load ledger ---------------------------------------------------------------------------------
LOAD_STATE = TableSpec(
    "ops", "databento_load_state",
    _cols(
        "load_id STRING, source_kind STRING, dataset STRING, schema STRING, series STRING, stype_in STRING, "
        "period_start TIMESTAMP, period_end TIMESTAMP, file_path STRING, content_sha256 STRING, "
        "dbn_version INT64, record_count INT64, rows_written INT64, first_ts_event TIMESTAMP, "
        "last_ts_event TIMESTAMP, status STRING, error STRING, run_id STRING, started_at TIMESTAMP, "
        "finished_at TIMESTAMP",
        ("load_id",),
    ),
    ("load_id",), volatile_columns=("load_id", "run_id", "started_at", "finished_at"),
)

# --- 6.3 / 6.4 features ----------------------------------------------------------------------------
_TS = ("trade_date", "symbol")


def _daily_feature(name: str, spec: str) -> TableSpec:
    """A per-(trade_date, symbol) feature table: both key columns lead ``spec``; clustered by symbol."""
    return TableSpec(
        "features", name, _cols(spec, _TS), _TS, date_column="trade_date", symbol_column="symbol",
        clustering=("symbol",),
    )


SESSION_BARS = _daily_feature(
    "session_bars",
    "trade_date DATE, symbol STRING, instrument_id INT64, open FLOAT64, high FLOAT64, low FLOAT64, "
    "close FLOAT64, volume INT64, bar_count INT64, source_freq STRING, roll_flag BOOL, thin_flag BOOL, "
    "settle FLOAT64, open_interest INT64, session_complete BOOL, last_bar_end TIMESTAMP, session_status STRING",
)
MARKET_FEATURES = _daily_feature(
    "market_features",
    "trade_date DATE, symbol STRING, vwap FLOAT64, realized_vol_1h FLOAT64, sum_r2 FLOAT64, rv20 FLOAT64, "
    "vol_percentile FLOAT64, k_vol FLOAT64",
)
PIVOTS = _daily_feature(
    "pivots",
    "trade_date DATE, symbol STRING, prev_high FLOAT64, prev_low FLOAT64, prev_close FLOAT64, P FLOAT64, "
    "R1 FLOAT64, R2 FLOAT64, R3 FLOAT64, S1 FLOAT64, S2 FLOAT64, S3 FLOAT64, price FLOAT64, "
    "distance_to_P FLOAT64, distance_to_nearest_pivot FLOAT64, weekly_pivot FLOAT64, "
    "weekly_pivot_distance FLOAT64, price_above_P BOOL, pivot_roll_flag BOOL",
)
GOLDEN_ZONE = _daily_feature(
    "golden_zone",
    "trade_date DATE, symbol STRING, golden_zone_state INT64, swing_high FLOAT64, swing_low FLOAT64, "
    "fib_50 FLOAT64, fib_618 FLOAT64, vol_decay_slope FLOAT64, qualified_trigger BOOL",
)

# The 16 policy features of POLICY_FEATURES.md, in order, with their BigQuery types.
POLICY_FIELDS: tuple[tuple[str, str], ...] = (
    ("trump_action_prob", "FLOAT64"),
    ("trump_expected_zl_move", "FLOAT64"),
    ("trump_score", "FLOAT64"),
    ("trump_score_signed", "FLOAT64"),
    ("trump_confidence", "FLOAT64"),
    ("trump_sentiment_7d", "FLOAT64"),
    ("trump_tariff_intensity", "FLOAT64"),
    ("trump_procurement_alert", "BOOL"),
    ("trump_mentions", "INT64"),
    ("trumpxi_china_mentions", "INT64"),
    ("trumpxi_sentiment_volatility", "FLOAT64"),
    ("trumpxi_policy_impact", "FLOAT64"),
    ("trumpxi_volatility_30d_ma", "FLOAT64"),
    ("trump_soybean_sentiment_7d", "FLOAT64"),
    ("policy_trump_topic_multiplier", "FLOAT64"),
    ("policy_trump_recency_decay", "FLOAT64"),
)
_POLICY_SPEC = ", ".join(f"{n} {t}" for n, t in POLICY_FIELDS)
# Keyed by (trade_date, cutoff): one row per distinct session close instant (UTC) of the universe's
# roots on the trade date (SPEC 6.4: each root's row uses the events before its own close).
_POLICY_KEY = ("trade_date", "cutoff")
POLICY_FEATURES = TableSpec(
    "features", "policy_features",
    _cols("trade_date DATE, cutoff TIMESTAMP, " + _POLICY_SPEC, _POLICY_KEY),
    _POLICY_KEY, date_column="trade_date",
)
POLICY_EVENTS = TableSpec(
    "reference", "policy_events",
    _cols(
        "event_id STRING, ts TIMESTAMP, source STRING, category STRING, text STRING, url STRING, kind STRING, "
        "ingested_from STRING, ingested_at TIMESTAMP",
        ("event_id",),
    ),
    ("event_id",),
)
REGIME_CALENDAR = TableSpec(
    "training", "regime_calendar",
    _cols("date DATE, regime STRING, valid_from DATE, valid_to DATE", ("date",)),
    ("date",),
)
REGIME_WEIGHTS = TableSpec(
    "training", "regime_weights",
    _cols("regime STRING, weight INT64, description STRING", ("regime",)),
    ("regime",),
)

# --- 6.5 consolidated frame and matrix ---------------------------------------------------------
_CONS_KEY = ("symbol", "data_date")
CONSOLIDATED = TableSpec(
    "features", "consolidated_features",
    _cols(
        "symbol STRING, data_date DATE, timestamp TIMESTAMP, open FLOAT64, high FLOAT64, low FLOAT64, "
        "close FLOAT64, volume INT64, vwap FLOAT64, realized_vol_1h FLOAT64, P FLOAT64, R1 FLOAT64, "
        "R2 FLOAT64, S1 FLOAT64, S2 FLOAT64, distance_to_P FLOAT64, distance_to_nearest_pivot FLOAT64, "
        "weekly_pivot_distance FLOAT64, price_above_P BOOL, "
        + _POLICY_SPEC
        + ", golden_zone_state INT64, swing_high FLOAT64, swing_low FLOAT64, fib_50 FLOAT64, fib_618 FLOAT64, "
        "vol_decay_slope FLOAT64, qualified_trigger BOOL, vol_percentile FLOAT64, k_vol FLOAT64",
        _CONS_KEY,
    ),
    _CONS_KEY, date_column="data_date", symbol_column="symbol", clustering=("symbol",),
)

MATRIX_MARKET = S(
    "market_data",
    "open FLOAT64, high FLOAT64, low FLOAT64, close FLOAT64, volume INT64, vwap FLOAT64, realized_vol_1h FLOAT64",
)
MATRIX_PIVOTS = S(
    "pivots",
    "P FLOAT64, R1 FLOAT64, R2 FLOAT64, S1 FLOAT64, S2 FLOAT64, distance_to_P FLOAT64, "
    "distance_to_nearest_pivot FLOAT64, weekly_pivot_distance FLOAT64, price_above_P BOOL, "
    # appended extras (allowed by the spec)
    "R3 FLOAT64, S3 FLOAT64, pivot_roll_flag BOOL",
)
MATRIX_POLICY = S("policy", _POLICY_SPEC)
MATRIX_GOLDEN = S(
    "golden_zone",
    "state INT64, swing_high FLOAT64, swing_low FLOAT64, fib_50 FLOAT64, fib_618 FLOAT64, "
    "vol_decay_slope FLOAT64, qualified_trigger BOOL",
)
MATRIX_REGIME = S("regime", "name STRING, weight INT64, vol_percentile FLOAT64, k_vol FLOAT64")
# The regime calendar is written after the fact (a regime "starting" 2020-01-01 was not known then).
MATRIX_REGIME = replace(MATRIX_REGIME, fields=tuple(
    replace(f, flags=("hindsight",)) if f.name in ("name", "weight") else f for f in MATRIX_REGIME.fields))
DAILY_ML_MATRIX = TableSpec(
    "features", "daily_ml_matrix",
    (
        Column("symbol", "STRING", nullable=False),
        Column("data_date", "DATE", nullable=False),
        Column("timestamp", "TIMESTAMP"),
        MATRIX_MARKET,
        MATRIX_PIVOTS,
        MATRIX_POLICY,
        MATRIX_GOLDEN,
        MATRIX_REGIME,
        Column("regime_name", "STRING", flags=("hindsight",)),
        Column("ingestion_ts", "TIMESTAMP"),
    ),
    _CONS_KEY, date_column="data_date", symbol_column="symbol", clustering=("symbol", "regime_name"),
    volatile_columns=("ingestion_ts",),
)

TARGET_HORIZONS: tuple[tuple[str, int], ...] = (
    ("1d", 1), ("1w", 5), ("1m", 21), ("3m", 63), ("6m", 126), ("12m", 252),
)


def flat_field_name(struct: str, field_name: str) -> str:
    """Name of a matrix STRUCT member once flattened: the member's own name where it is unambiguous."""
    return {("golden_zone", "state"): "golden_zone_state", ("regime", "name"): "regime_name",
            ("regime", "weight"): "regime_weight"}.get((struct, field_name), field_name)


def training_table(root: str) -> TableSpec:
    """``training.<root>_training_daily``: the matrix flattened plus targets, split, purge flags and weight.

    The name is the root lower-cased (``6E`` -> ``training.6e_training_daily``): a leading digit is a valid
    Dagster asset key component and a valid quoted DuckDB/BigQuery table name (the SQL always quotes it)."""
    flat: list[Column] = [Column("symbol", "STRING", False), Column("data_date", "DATE", False),
                          Column("timestamp", "TIMESTAMP")]
    for struct in (MATRIX_MARKET, MATRIX_PIVOTS, MATRIX_POLICY, MATRIX_GOLDEN, MATRIX_REGIME):
        for f in struct.fields:
            flat.append(replace(f, name=flat_field_name(struct.name, f.name)))  # keeps the flags
    ahead = ("lookahead",)
    flat += [Column(f"target_{h}", "FLOAT64", flags=ahead) for h, _ in TARGET_HORIZONS]
    # The unadjusted forward return (SPEC 6.7, 2026-12-08): the contract gap of a roll included.
    flat += [Column(f"target_{h}_raw", "FLOAT64", flags=ahead) for h, _ in TARGET_HORIZONS]
    flat += [Column(f"target_crosses_roll_{h}", "BOOL", flags=ahead) for h, _ in TARGET_HORIZONS]
    flat += [Column("split", "STRING"), Column("purged", "BOOL", flags=ahead)]
    # Per horizon: the row's own target window (t, t+h] crosses a split boundary (SPEC 6.7, 2026-12-03).
    flat += [Column(f"purged_{h}", "BOOL", flags=ahead) for h, _ in TARGET_HORIZONS]
    # The sample weight is the regime weight: hindsight, never a feature, but the weight to train with.
    flat += [Column("training_weight", "INT64", flags=("hindsight",)), Column("ingestion_ts", "TIMESTAMP")]
    return TableSpec(
        "training", f"{root.lower()}_training_daily", tuple(flat), _CONS_KEY,
        date_column="data_date", symbol_column="symbol", clustering=("symbol",),
        volatile_columns=("ingestion_ts",),
    )


# Table groups (SPEC 6.1 raw sources; the date x root / date partitioned feature tables of 6.3-6.5).
RAW_TABLES = (OHLCV_1M, OHLCV_1H, OHLCV_1D, STATISTICS, DEFINITIONS)
PARTITIONED_FEATURE_TABLES = (SESSION_BARS, MARKET_FEATURES, PIVOTS, GOLDEN_ZONE, CONSOLIDATED, DAILY_ML_MATRIX)

ALL_TABLES: dict[str, TableSpec] = {
    t.fqn: t
    for t in (
        OHLCV_1M, OHLCV_1H, OHLCV_1D, STATISTICS, DEFINITIONS, LOAD_STATE, SESSION_BARS, MARKET_FEATURES,
        PIVOTS, GOLDEN_ZONE, POLICY_FEATURES, POLICY_EVENTS, REGIME_CALENDAR, REGIME_WEIGHTS, CONSOLIDATED,
        DAILY_ML_MATRIX,
    )
}


def table_for(fqn: str) -> TableSpec:
    """Look a table up by ``schema.name`` (the allow-list of every identifier the SQL may use)."""
    if fqn in ALL_TABLES:
        return ALL_TABLES[fqn]
    schema, _, name = fqn.partition(".")
    if schema == "training" and name.endswith("_training_daily"):
        root = name[: -len("_training_daily")].upper()
        from chimera_assets.universe import ROOT_PATTERN

        if ROOT_PATTERN.match(root):
            return training_table(root)
    raise KeyError(f"unknown table {fqn!r}")
