"""What a raw asset says about landing files it cannot load: a few lines per run, never one per file.

A landing directory may hold thousands of bad files (10,000 empty placeholders of an aborted sync):
the first run records each as ``failed`` in the load ledger and later runs skip them while their
content is unchanged. Either way the user reads one summary line (count, the first few names, how to
retry), and a file whose header cannot be read (it belongs to no schema, so every raw asset sees it)
is summarised by one raw asset of the run only.
"""

from __future__ import annotations

import dagster as dg

from chimera_assets.ingest.execute import Prepared
from chimera_assets.ingest.landing import display_path
from chimera_assets.schemas import TableSpec

EXAMPLES = 3
RETRY_HINT = ("a file is retried once its content changes (fix, replace or remove it); "
              "the reasons are in ops.databento_load_state")


def reports_headerless(context: dg.AssetExecutionContext) -> bool:
    """Whether this raw asset is the one of the run that reports files without a readable header:
    the first raw asset (by key) the run selected."""
    selected = set(context.run.asset_selection or ()) or set(context.job_def.asset_layer.executable_asset_keys)
    raw = sorted(k.to_user_string() for k in selected if k.path[0] == context.asset_key.path[0])
    return not raw or raw[0] == context.asset_key.to_user_string()


def file_problem_lines(prep: Prepared, spec: TableSpec, report_headerless: bool) -> list[str]:
    lines = []
    for path, symbols in prep.foreign:
        lines.append(f"skipping {display_path(path)}: its series {symbols} belong to no root of the universe; "
                     "add the root to the universe to load it")
    for path, head, recs in prep.disagreeing:
        lines.append(f"{display_path(path)}: the header's period {head} disagrees with its records {recs}; "
                     "coverage follows the records")
    new = [m for m, headerless in prep.reported if report_headerless or not headerless]
    if new:
        lines.append(f"{spec.fqn}: {len(new)} landing file(s) cannot be loaded and are skipped (recorded failed), "
                     f"e.g. {'; '.join(m[:300] for m in new[:EXAMPLES])}; {RETRY_HINT}")
    old = [(p, why) for p, why, headerless in prep.quarantined if report_headerless or not headerless]
    if old:
        names = ", ".join(display_path(p) for p, _ in old[:EXAMPLES])
        lines.append(f"{spec.fqn}: skipping {len(old)} landing file(s) that failed before and are unchanged "
                     f"(e.g. {names}: {old[0][1][:200]}); {RETRY_HINT}")
    return lines
