"""``chimera_whole_graph``: the whole graph for a date range and roots, launched from the UI's Jobs
page (or GraphQL), run exactly like ``chimera run``.

Why a job and not "Materialize all": the Lineage page's "Materialize all" starts one asset backfill
over every asset, which Dagster refuses when the root assets differ in partitioning (the raw tables
are date x root, the reference tables unpartitioned: GraphQL error "All the assets at the root of
the backfill must have the same PartitionsDefinition"). An asset backfill over the date x root
assets alone also falls short: the daemon splits it into one run per root, and the date-only policy
features and the unpartitioned training tables then follow through automation in separate runs.

This job's single op calls ``runner.run_graph`` on the run's own instance: reference tables, the
policy features of the range, one range run per block of roots for raw -> session bars -> features ->
matrix, the training tables and the quality report, each a real Dagster run (tagged with this run's
id) in the same instance. While a run of this job is queued or in progress, declarative automation
requests nothing (``lib.automation.conditions.WholeGraphRunActive``): every partition of the range
is about to be produced by it, in order.

Launch (UI): Jobs -> chimera_whole_graph -> Launchpad, config::

    ops:
      run_whole_graph:
        config: {start: "2024-01-02", end: "2024-02-29", roots: "ES,MES,ZL", include_training: true}
"""


from collections.abc import Callable
from datetime import date

import dagster as dg
from pydantic import Field

from chimera_assets.lib.job_names import PARENT_RUN_TAG, WHOLE_GRAPH_JOB


class WholeGraphConfig(dg.Config):
    """The range and roots, as for ``chimera run``."""

    start: str = Field(description="first trade date, YYYY-MM-DD")
    end: str = Field(description="last trade date, YYYY-MM-DD, inclusive")
    roots: str = Field(default="ZL,MES", description="comma-separated roots of the universe")
    include_training: bool = Field(default=True, description="also rebuild the training tables")
    source: str = Field(
        default="landing", description="'landing' (DBN files in CHIMERA_LANDING_DIR) or 'api' (Databento)"
    )


def parse_config(config: WholeGraphConfig) -> tuple[date, date, list[str], str]:
    """Validated (start, end, roots, source); ``dg.Failure`` naming the bad field otherwise."""
    from chimera_assets.lib.runner import RunInputError, validate_range
    from chimera_assets.universe import UniverseConfigError, get_universe

    try:
        start, end = date.fromisoformat(config.start), date.fromisoformat(config.end)
    except ValueError as exc:
        raise dg.Failure(f"start={config.start!r} / end={config.end!r}: not a date (YYYY-MM-DD)") from exc
    if config.source not in ("landing", "api"):
        raise dg.Failure(f"source={config.source!r} is not 'landing' or 'api'")
    roots = [r.strip() for r in config.roots.split(",") if r.strip()]
    try:
        validate_range(start, end)
        roots = get_universe().require_roots(roots)
    except (RunInputError, UniverseConfigError) as exc:
        raise dg.Failure(str(exc).replace("--", "")) from exc
    if not roots:
        raise dg.Failure("roots is empty")
    return start, end, roots, config.source


def whole_graph_job(build_definitions: Callable[[str], dg.Definitions]) -> dg.JobDefinition:
    """The job over the definitions ``build_definitions(source_mode)`` returns (the code location's
    builder, passed in so this module does not import the definitions that include it)."""

    @dg.op(
        description="Materialize every asset for [start, end] x roots in a few range runs (as `chimera run`).",
        out=dg.Out(dg.Nothing),
    )
    def run_whole_graph(context: dg.OpExecutionContext, config: WholeGraphConfig):
        from chimera_assets.lib.runner import format_summary, run_graph
        from chimera_assets.settings import get_settings
        from chimera_assets.warehouse import get_warehouse

        start, end, roots, source = parse_config(config)
        defs = build_definitions(source)
        summary = run_graph(
            defs, start, end, roots, context.instance, get_warehouse(get_settings()),
            progress=context.log.info, include_training=config.include_training,
            extra_tags={PARENT_RUN_TAG: context.run_id},
        )
        context.log.info(format_summary(summary))
        meta = {
            "stages": dg.MetadataValue.md("\n".join(
                f"- {s.name}: {'ok' if s.success else 'FAILED'} in {s.seconds:.1f}s" for s in summary.stages
            )),
            "checks_passed": summary.checks_passed,
            "checks_failed": len(summary.checks_failed),
            "rows_per_table": dg.MetadataValue.json(summary.rows_per_table),
        }
        if not summary.success or summary.checks_failed:
            failed = [s for s in summary.stages if not s.success]
            why = failed[0].error if failed else f"blocking checks failed: {', '.join(summary.checks_failed[:10])}"
            raise dg.Failure(description=f"whole graph {start}..{end} x {','.join(roots)}: {why}", metadata=meta)
        return dg.Output(None, metadata=meta)


    @dg.job(
        name=WHOLE_GRAPH_JOB,
        description=(
            "The whole graph for a date range and roots in a few range runs, like `chimera run` (use it "
            "instead of the Lineage page's 'Materialize all'). Config: ops.run_whole_graph.config."
        ),
        executor_def=dg.in_process_executor,
    )
    def whole_graph():
        run_whole_graph()

    return whole_graph
