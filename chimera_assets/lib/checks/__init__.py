"""Dagster wiring of the data quality rules (``chimera_assets.quality``): write audits and asset checks.

Two layers guard every warehouse table (SPEC 7, docs/data_quality.md):

* **Write audit** (write -> audit -> publish), ``audits``: ``audit_for(spec)`` gives the IO manager and
  the assets that call ``warehouse.merge`` themselves the blocking audit of a table. A failing hard rule
  raises ``AuditFailed``: nothing is published, the step fails, downstream steps are skipped; before
  raising, the audit logs a failed blocking evaluation of the same asset check per offending partition.
* **Asset checks**: ``table_checks`` (one multi-asset check per table, hard rules ``blocking``),
  ``freshness`` (``matrix_freshness``), ``schema_change`` (``column_schema_change``); ``build`` gathers
  them (``build_checks()``). ``evaluation`` turns quality outcomes into Dagster evaluations and metadata;
  ``scope`` says which tables are checked and with which calendars.

The modules are imported by their full path (``chimera_assets.lib.checks.audits`` ...); this package
re-exports nothing.
"""
