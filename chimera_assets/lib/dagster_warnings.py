"""Dagster's notices about the beta/preview APIs chimera uses on purpose, silenced by name.

Importing this module (``chimera_assets.definitions`` does it first) installs one filter per API
below, so the code server, every run worker and the CLI log no ``BetaWarning``/``PreviewWarning``
lines for them: in the UI they repeated at every run start and buried the run's own messages. Any
OTHER Dagster warning still shows, so a newly used beta API or a deprecation is noticed.

| API | why chimera uses it |
|---|---|
| ``asset(backfill_policy=...)`` | one run per range: a vectorised pass instead of one run per partition |
| ``MultiToSingleDimensionPartitionMapping`` | date-only policy features read by date x root assets |
| ``AutomationConditionSensorDefinition(use_user_code_server=...)`` | custom conditions (lib/automation/) |
| ``AssetCheckSpec(partitions_def=...)`` | checks evaluated per (date, root) partition |
| ``InitResourceContext.dagster_run`` | called by Dagster itself for nested resources, not by chimera |

It also narrows databento's import-time ``simplefilter("always", DeprecationWarning)`` to databento.
"""

from __future__ import annotations

import warnings

import dagster as dg

KNOWN_NOTICES: tuple[tuple[type[Warning], str], ...] = (
    (dg.BetaWarning, r"Parameter `backfill_policy` of (function|class) `asset"),
    (dg.BetaWarning, r"Class `MultiToSingleDimensionPartitionMapping`"),
    (dg.BetaWarning, r"Parameter `use_user_code_server`"),
    (dg.PreviewWarning, r"Parameter `partitions_def` of \w+ `(AssetCheckSpec|asset_check|multi_asset_check)`"),
    (dg.BetaWarning, r"Parameter `partitions_def` of \w+ `(AssetCheckSpec|asset_check|multi_asset_check)`"),
    (DeprecationWarning, r"InitResourceContext\.dagster_run is deprecated"),
)


def _scope_databento_filter() -> None:
    """``import databento`` runs ``warnings.simplefilter("always", DeprecationWarning)``: from then
    on EVERY deprecation notice of every library prints at every call (in a run worker, once per
    partition or step). Import it now and narrow that filter to databento's own notices."""
    import databento  # noqa: F401

    everything = ("always", None, DeprecationWarning, None, 0)
    if everything in warnings.filters:
        warnings.filters.remove(everything)
        warnings.filterwarnings("always", category=DeprecationWarning, module=r"databento")


def silence_known_notices() -> None:
    """Install the filters (idempotent: ``warnings.filterwarnings`` drops duplicates)."""
    _scope_databento_filter()
    for category, message in KNOWN_NOTICES:
        warnings.filterwarnings("ignore", message=message, category=category)


silence_known_notices()
