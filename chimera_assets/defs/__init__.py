"""The Dagster definitions, one package per domain; each exposes ``defs(checks)``.

| domain | holds |
|---|---|
| ``market_data`` | raw Databento tables, the load ledger, the landing and API sensors, the daily safety net |
| ``reference`` | policy events, regime calendar and weights |
| ``features`` | session bars, feature families, policy features, consolidated frame, daily_ml_matrix |
| ``training`` | the per-root training tables |
| ``ops`` | the data-quality report, the whole-graph job, the automation sensor |

``chimera_assets/definitions.py`` merges them with the shared resources.
"""
