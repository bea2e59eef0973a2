"""Which policy event files to read, and how a new load combines with the stored events.

Pure functions (file listing and polars); the Dagster shell is ``chimera_assets.defs.reference.assets``.

Sources never delete by absence (SPEC 6.2): with no policy file at all the stored events stay as
they are, and events whose file is no longer in the directory stay too. Only a file that is present
is authoritative for its own events: it replaces the events stored from it (so a corrected file
takes effect), never the events of other files.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

POLICY_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json", ".ndjson")
# Office/LibreOffice lock files ("~$events.csv", ".~lock.events.csv#") and editor backups ("events.csv~").
_LOCK_PREFIXES = ("~$", ".~lock")


def _ignored(path: Path, directory: Path) -> bool:
    """Hidden files or folders (a name starting with '.'), lock files and backups are not sources."""
    parts = path.relative_to(directory).parts
    name = path.name
    return (
        any(p.startswith(".") for p in parts)
        or name.startswith(_LOCK_PREFIXES)
        or name.endswith("~")
    )


def policy_files(directory: Path | None) -> list[Path]:
    """Event files (parquet, CSV, JSON lines) under ``directory``, sorted; none when it is unset or absent.

    Hidden files and folders (``.name``), Office lock files (``~$name``), LibreOffice locks
    (``.~lock.name#``) and backups (``name~``) are skipped: they are not event sources, and a lock
    file is unreadable while the spreadsheet is open.
    """
    if directory is None or not directory.exists():
        return []
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.suffix.lower() in POLICY_SUFFIXES and not _ignored(p, directory)
    )


def combine_policy_events(stored: pl.DataFrame, loaded: pl.DataFrame, loaded_files: list[str]) -> pl.DataFrame:
    """The events to publish: ``loaded`` plus the stored events of files that were not loaded this time.

    ``stored``/``loaded`` have the ``reference.policy_events`` columns; ``ingested_from`` names the
    file an event came from (its file name). Stored events whose ``ingested_from`` is in
    ``loaded_files`` are replaced by that file's current content; the others are kept (their file is
    gone or was not read: absence never deletes). An event id present in both keeps the loaded row.
    Sorted by (ts, event_id).
    """
    kept = stored.filter(~pl.col("ingested_from").is_in(loaded_files) | pl.col("ingested_from").is_null())
    kept = kept.join(loaded.select("event_id"), on="event_id", how="anti")
    out = pl.concat([loaded.select(stored.columns), kept], how="vertical_relaxed") if stored.width else loaded
    return out.sort("ts", "event_id")
