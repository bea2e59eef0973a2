"""Data quality rules (SPEC 7): pure functions over polars frames, no Dagster.

Each rule finds the *offending rows* of a frame (a polars frame with a ``partition`` column holding
the Dagster partition key the row belongs to, ``"2024-01-03|ZL"``, ``"2024-01-03"`` or NULL for
unpartitioned tables) and ``outcome``/``outcomes_by_partition`` turn them into ``CheckOutcome``s:
passed, severity and a JSON-able metadata dict (counts, thresholds, up to 20 offending keys).

Hard rules (blocking, severity ERROR; also enforced before publishing by the write audit):
``keys_not_null``, ``no_duplicate_keys``, ``ohlc_consistent``, ``regime_coverage``.
Soft rules: ``struct_members_present`` (ERROR, not blocking), ``no_missing_sessions``,
``flips_and_thin_sessions``, ``no_outlier_returns``, ``matrix_freshness`` (WARN).

``evaluate_rule`` runs a rule against a warehouse for a set of partitions (or the whole table); the
Dagster checks (``chimera_assets.lib.checks``) and the dashboard (``ops.data_quality_report``) both use it,
so they always agree. See docs/data_quality.md.

Layout (one concern per module; import each name from the module that defines it):
``registry`` (rules, thresholds, ``CheckOutcome``), ``frames`` (partition keys, offender frames),
``hard_rules``, ``soft_rules``, ``outcomes`` (offenders -> outcomes) and ``evaluation`` (rules against
a warehouse, write-audit offenders). The CME session calendars are in ``chimera_assets.trade_calendar``.
"""
