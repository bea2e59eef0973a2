"""A quiet, readable UI: no Dagster beta/preview/deprecation notices from chimera's definitions or
runs, and the quality chart as an image the UI renders (not a path on the server)."""

import base64
import subprocess
import sys
from datetime import date

import dagster as dg

NOTICE_WORDS = ("BetaWarning", "PreviewWarning", "DeprecationWarning", "SupersessionWarning")


def test_loading_the_code_location_prints_no_dagster_notices():
    """What the code server and every run worker do first: import the definitions (every warning
    shown, as ``python -W always`` would)."""
    code = (
        "import warnings; warnings.simplefilter('always'); "
        "import chimera_assets.definitions as d; d.defs.resolve_asset_graph(); "
        "d.defs.resolve_implicit_global_asset_job_def()"
    )
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    noisy = [ln for ln in out.stderr.splitlines() if any(w in ln for w in NOTICE_WORDS)]
    assert noisy == []


def test_a_range_run_logs_no_dagster_notices(isolated_home, monkeypatch):
    """A ranged run of the whole date x root chain (what a UI backfill run executes), every warning on."""
    import warnings

    from chimera_assets.demo.data import write_demo_files

    landing = isolated_home / "landing"
    write_demo_files(landing, ["ZL"], date(2024, 2, 26), date(2024, 3, 9))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(landing))
    from chimera_assets.definitions import build_definitions
    from chimera_assets.lib.runner import run_graph
    from chimera_assets.settings import get_settings
    from chimera_assets.warehouse import get_warehouse

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import chimera_assets.lib.dagster_warnings as dw

        dw.silence_known_notices()  # what importing chimera_assets.definitions installs
        summary = run_graph(build_definitions(), date(2024, 3, 4), date(2024, 3, 8), ["ZL"],
                            dg.DagsterInstance.ephemeral(), get_warehouse(get_settings()), progress=lambda _m: None)
    assert summary.success
    notices = [f"{w.category.__name__}: {w.message}" for w in caught
               if issubclass(w.category, (dg.BetaWarning, dg.PreviewWarning, DeprecationWarning))]
    assert notices == []


def test_quality_chart_is_an_inline_markdown_image(isolated_home):
    from chimera_assets.defs.ops.quality_report import QUALITY_ASSETS, REPORT_KEY
    from chimera_assets.lib.io_manager import WarehouseResource

    wr = WarehouseResource(duckdb_path=str(isolated_home / "warehouse.duckdb"))
    result = dg.materialize(QUALITY_ASSETS, resources={"warehouse": wr})
    assert result.success
    meta = result.asset_materializations_for_node(REPORT_KEY.to_python_identifier())[0].metadata
    image = meta["chart_image"]
    assert isinstance(image, dg.MarkdownMetadataValue)
    prefix = "![data quality chart](data:image/png;base64,"
    assert image.value.startswith(prefix) and image.value.endswith(")")
    png = base64.b64decode(image.value[len(prefix):-1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert str(isolated_home) not in image.value  # no server path in what the UI renders
