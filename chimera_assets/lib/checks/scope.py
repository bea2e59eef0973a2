"""Which tables the quality rules guard, and the universe's calendars and first dates they are judged by."""

from datetime import date

from chimera_assets.quality.evaluation import CHECKED_TABLES
from chimera_assets.schemas import TableSpec, training_table
from chimera_assets.universe import get_universe


def audited_tables() -> list[TableSpec]:
    """Every table with a write audit and a quality check: the checked tables, then one training table per root."""
    return [*CHECKED_TABLES, *(training_table(r) for r in get_universe().root_names)]


def calendars_and_starts() -> tuple[dict[str, str], dict[str, date]]:
    """(root -> exchange calendar name, root -> first trade date) of the configured universe."""
    universe = get_universe()
    return ({r: c.calendar for r, c in universe.roots.items()}, {r: c.start for r, c in universe.roots.items()})
