"""A SQLite event log storage that writes a batch of asset events in one transaction per database.

Why: a ranged run over N (date, root) partitions records one ASSET_MATERIALIZATION event per
partition and asset (the UI's partition status is built from those rows). With
``DAGSTER_EVENT_BATCH_SIZE`` set, Dagster hands them to ``store_event_batch`` in batches, but the
SQLite storage only inherits the base-class loop: per event it opens a new engine for the run shard,
another for the index shard, and checks ``has_table`` with a third (~20 ms per partition and asset
measured, against ~0.8 ms for this class; ``benchmarks/BENCHMARKS.md``). dagster-postgres already
overrides ``store_event_batch`` with a multi-row insert; this is the same for the embedded default.

The rows written are the stock ones (same ``_event_to_row``, same tags, same ``asset_keys`` row per
asset: the last event of the batch for each key wins, as it does when events are stored one by one).
It uses private helpers of ``SqlEventLogStorage`` (``_event_to_row``, ``_store_asset_event_tags``,
``_store_asset_event``), so the dagster pin in pyproject.toml matters, and
``chimera_assets_tests/test_event_storage.py`` compares its rows with the stock storage's.

Configure it in ``$DAGSTER_HOME/dagster.yaml`` (``chimera_assets/lib/instance.py`` writes this)::

    event_log_storage:
      module: chimera_assets.lib.event_storage
      class: BatchingSqliteEventLogStorage
      config:
        base_dir: /path/to/dagster_home/history/runs
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData

# Batches made only of these go through the one-transaction path; anything else (planned events
# mixed with check-planned events, failures) takes the stock per-event path.
_BATCHED_TYPES = frozenset({DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION})


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose ``store_event_batch`` inserts a batch of materializations or
    observations as one multi-row insert into the run shard and one transaction on the index shard
    (event rows, their indexed tags, one ``asset_keys`` update per asset key)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._tables_present: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value
    ) -> BatchingSqliteEventLogStorage:
        # The stock classmethod hard-codes SqliteEventLogStorage: without this override the
        # dagster.yaml entry would silently build the unbatched class.
        return cls(inst_data=inst_data, **config_value)

    def has_table(self, table_name: str) -> bool:
        # The stock check opens a new engine per call (once per stored asset event). A table that
        # exists keeps existing (migrations only add), so a positive answer is remembered.
        if table_name in self._tables_present:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_present.add(table_name)
        return found

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        events = list(events)
        if not events:
            return
        types = {e.dagster_event_type if e.is_dagster_event else None for e in events}
        # One event type, one run, every event with an asset key: what a ranged asset output yields.
        # A mixed batch would need the per-event order of asset-row updates kept: stock path.
        if (
            len(types) != 1
            or not types <= _BATCHED_TYPES
            or len({e.run_id for e in events}) != 1
            or not all(e.get_dagster_event().asset_key for e in events)
        ):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            # Index shard ids are needed for the tags and the asset row: RETURNING, in input order.
            result = conn.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            event_ids = [int(r[0]) for r in result.fetchall()]
            if len(event_ids) != len(events):
                raise RuntimeError(f"event batch: {len(events)} events stored but {len(event_ids)} ids returned")
            self._store_asset_event_tags(conn, events, event_ids)
            last_by_key: dict[str, int] = {}
            for i, e in enumerate(events):
                last_by_key[e.get_dagster_event().asset_key.to_string()] = i
            for i in sorted(last_by_key.values()):
                self._store_asset_event(conn, events[i], event_ids[i])


def storage_config(base_dir: str) -> dict:
    """The ``event_log_storage`` block of a dagster.yaml for this class (used by instance.py)."""
    return {
        "module": "chimera_assets.lib.event_storage",
        "class": BatchingSqliteEventLogStorage.__name__,
        "config": {"base_dir": base_dir},
    }

