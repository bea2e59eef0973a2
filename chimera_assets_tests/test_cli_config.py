"""The CLI passes its options as resource configuration, never through the environment:
``chimera run --landing-dir X --policy-dir P`` / ``--demo`` and ``chimera prune --landing-dir X`` leave
``os.environ`` as it was and still read X and P; the resources show the configured values."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from chimera_assets.cli import main
from chimera_assets.demo.data import write_demo_files
from chimera_assets.lib.instance import BOOKKEEPING_ENV
from chimera_assets.schemas import LOAD_STATE, OHLCV_1H, POLICY_EVENTS
from chimera_assets.settings import get_settings
from chimera_assets.warehouse import get_warehouse

RUN = ["--roots", "ZL", "--start", "2024-01-02", "--end", "2024-01-12", "--no-training", "--ephemeral-instance"]


@pytest.fixture
def environ_snapshot(monkeypatch) -> dict[str, str]:
    """This process's environment before the command. The bookkeeping variables are set beforehand:
    Dagster reads them in-process (the one documented write, ``settings.set_process_defaults``)."""
    for key, value in BOOKKEEPING_ENV.items():
        monkeypatch.setenv(key, value)
    return _environ()


def _environ() -> dict[str, str]:
    """``os.environ`` without pytest's own PYTEST_CURRENT_TEST (it names the phase: setup, call)."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def _policy_csv(directory: Path) -> Path:
    directory.mkdir(parents=True)
    path = directory / "events.csv"
    path.write_text("ts,source,text\n2024-01-03T15:00:00Z,truth_social,Tariffs on China are coming\n"
                    "2024-01-08T14:00:00Z,whitehouse.gov,Executive order on soybean procurement\n")
    return path


def test_run_with_landing_and_policy_dirs_leaves_the_environment_and_loads_from_them(
    tmp_path, capsys, environ_snapshot
):
    landing, policy = tmp_path / "elsewhere", tmp_path / "policy"
    files = write_demo_files(landing, ["ZL"], date(2024, 1, 1), date(2024, 1, 13))
    _policy_csv(policy)
    assert "CHIMERA_LANDING_DIR" not in os.environ and "CHIMERA_POLICY_DIR" not in os.environ
    assert main(["run", "--landing-dir", str(landing), "--policy-dir", str(policy), *RUN]) == 0, capsys.readouterr()
    assert _environ() == environ_snapshot
    wh = get_warehouse(get_settings())
    loaded = wh.read(LOAD_STATE)
    assert loaded.height and all(p.startswith(str(landing.resolve())) for p in loaded["file_path"].to_list()), \
        loaded["file_path"].to_list()
    assert wh.read(OHLCV_1H).height > 0 and {f.name for f in files} >= {Path(p).name for p in loaded["file_path"]}
    events = wh.read(POLICY_EVENTS)
    assert events.height == 2 and set(events["ingested_from"].to_list()) == {"events.csv"}


def test_demo_run_leaves_the_environment_and_loads_the_demo_files(capsys, environ_snapshot):
    assert main(["run", "--demo", *RUN]) == 0, capsys.readouterr()
    assert _environ() == environ_snapshot
    demo = get_settings().home / "demo_landing"
    paths = get_warehouse(get_settings()).read(LOAD_STATE)["file_path"].to_list()
    assert paths and all(p.startswith(str(demo)) for p in paths), paths


def test_prune_with_landing_dir_leaves_the_environment_and_looks_there(tmp_path, capsys, environ_snapshot):
    landing = tmp_path / "elsewhere"
    landing.mkdir()
    assert main(["prune", "--landing-dir", str(landing)]) == 0
    assert _environ() == environ_snapshot
    assert f"sources present in {landing.resolve()}" in capsys.readouterr().out


def test_resources_show_the_configured_directories(tmp_path):
    from chimera_assets.definitions import build_definitions

    # The config defaults of the resource definitions: what the UI lists as the resources' values.
    def shown(defs: dg.Definitions, key: str) -> dict:
        return defs.get_repository_def().get_top_level_resources()[key].config_field.default_value

    defs = build_definitions(landing_dir=str(tmp_path / "l"), policy_dir=str(tmp_path / "p"))
    assert shown(defs, "databento") == {
        "mode": "landing", "landing_dir": str(tmp_path / "l"), "api_gateway": None, "api_key": None}
    assert shown(defs, "policy") == {"policy_dir": str(tmp_path / "p")}
    assert shown(build_definitions("api"), "databento")["mode"] == "api"
    # Unset: the fields stay empty and the deployment's settings apply where they are used.
    default = build_definitions()
    assert shown(default, "databento")["landing_dir"] is None and shown(default, "policy")["policy_dir"] is None
    assert default.resources["databento"].landing_path() == get_settings().landing_dir


def test_policy_events_read_the_policy_resource_directory(tmp_path, monkeypatch):
    """The asset takes its directory from the resource (shown in the UI), not from the environment."""
    from chimera_assets.defs.reference.assets import policy_events
    from chimera_assets.lib.io_manager import WarehouseIOManager, WarehouseResource
    from chimera_assets.lib.resources import PolicySource

    monkeypatch.setenv("CHIMERA_POLICY_DIR", str(tmp_path / "not_this_one"))
    _policy_csv(tmp_path / "policy")
    warehouse = WarehouseResource()
    result = dg.materialize(
        [policy_events],
        resources={"warehouse": warehouse, "warehouse_io": WarehouseIOManager(warehouse=warehouse),
                   "policy": PolicySource(policy_dir=str(tmp_path / "policy"))},
        instance=dg.DagsterInstance.ephemeral(),
    )
    (mat,) = result.get_asset_materialization_events()
    metadata = mat.materialization.metadata
    assert metadata["policy_dir"].value == str(tmp_path / "policy") and metadata["events_loaded"].value == 2


def test_the_code_location_names_the_variables_its_fields_come_from(tmp_path, monkeypatch):
    """The UI's definitions take the deployment's values as EnvVars: the UI shows the variable, the key's
    value appears nowhere in the definitions, and runs resolve them (also with a partial run config)."""
    from chimera_assets.definitions import build_definitions
    from chimera_assets.lib.resources import deployment_fields

    secret = "db-NOT-A-REAL-KEY-42"
    _policy_csv(tmp_path / "policy")
    monkeypatch.setenv("CHIMERA_POLICY_DIR", str(tmp_path / "policy"))
    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("DATABENTO_API_KEY", secret)
    defs = build_definitions(**deployment_fields())
    resources = defs.get_repository_def().get_top_level_resources()
    databento = resources["databento"].config_field.default_value
    assert databento["landing_dir"] == {"env": "CHIMERA_LANDING_DIR"} and databento["api_key"] == {"env": "DATABENTO_API_KEY"}
    assert resources["policy"].config_field.default_value == {"policy_dir": {"env": "CHIMERA_POLICY_DIR"}}
    assert secret not in repr(defs.resources) and secret not in str(databento)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey(["reference", "policy_events"])})
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                    run_config={"resources": {"databento": {"config": {"mode": "api"}}}})
    (mat,) = result.get_asset_materialization_events()
    assert mat.materialization.metadata["policy_dir"].value == str(tmp_path / "policy")
    # Unset variables stay empty fields (a run would refuse an unset EnvVar; settings supply the default).
    monkeypatch.delenv("CHIMERA_LANDING_DIR")
    assert deployment_fields()["landing_dir"] is None


def test_an_unresolved_envvar_field_still_gives_the_directory(tmp_path, monkeypatch):
    """``lib/runner.py`` calls ``landing_path()`` on the resource object of the definitions, before Dagster
    resolves its fields: an EnvVar there means the variable's value, not its name."""
    from chimera_assets.lib.resources import DatabentoSource, PolicySource

    monkeypatch.setenv("CHIMERA_LANDING_DIR", str(tmp_path / "l"))
    monkeypatch.setenv("CHIMERA_POLICY_DIR", str(tmp_path / "p"))
    assert DatabentoSource(landing_dir=dg.EnvVar("CHIMERA_LANDING_DIR")).landing_path() == tmp_path / "l"
    assert PolicySource(policy_dir=dg.EnvVar("CHIMERA_POLICY_DIR")).policy_path() == tmp_path / "p"
