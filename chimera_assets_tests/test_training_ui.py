"""The Dagster UI shows each table's column descriptions, units and the lookahead/hindsight flags
(issue 25 item 5): asserted on the webserver's own GraphQL schema, in process, against a code server
loading ``chimera_assets.definitions`` as ``dagster dev`` does."""

from __future__ import annotations

import dagster as dg
import pytest

from chimera_assets.definitions import build_definitions
from chimera_assets.features.versions import TRAINING_CODE_VERSION
from chimera_assets.schemas import training_table

# What the asset page's "Columns" table reads (the UI's query asks for the same fields).
QUERY = """
query AssetColumns($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      description
      opVersion
      metadataEntries {
        label
        ... on TableSchemaMetadataEntry {
          schema { columns { name type description tags { key value } } }
        }
      }
    }
  }
}
"""


def test_definitions_carry_column_descriptions_for_the_training_and_matrix_tables():
    defs = build_definitions()
    for key in (dg.AssetKey(["training", training_table("ZL").name]), dg.AssetKey(["features", "daily_ml_matrix"])):
        spec = defs.resolve_assets_def(key).specs_by_key[key]
        schema = spec.metadata["dagster/column_schema"]
        undocumented = [c.name for c in schema.columns if not c.description]
        assert undocumented == [], (key, undocumented)


@pytest.mark.timeout(300)
def test_graphql_returns_column_descriptions_units_and_flags(tmp_path):
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    repo = tmp_path / "repo.py"
    repo.write_text("from chimera_assets.definitions import defs  # noqa: F401\n", encoding="utf-8")
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        with define_out_of_process_context(str(repo), None, instance) as context:
            key = {"path": ["training", training_table("ZL").name]}
            result = execute_dagster_graphql(context, QUERY, {"key": key})
    assert not result.errors, result.errors
    node = result.data["assetNodeOrError"]
    assert node["opVersion"] == TRAINING_CODE_VERSION
    (entry,) = [e for e in node["metadataEntries"] if e["label"] == "dagster/column_schema"]
    cols = {c["name"]: c for c in entry["schema"]["columns"]}
    assert cols["close"]["description"].startswith("last trade of the session")
    tags = {n: {t["key"]: t["value"] for t in c["tags"]} for n, c in cols.items()}
    assert tags["close"]["unit"].startswith("price units") and tags["close"]["family"] == "session_bars"
    assert tags["target_1d"]["lookahead"] == "true" and "hindsight" not in tags["target_1d"]
    assert tags["regime_name"]["hindsight"] == "true" and tags["training_weight"]["hindsight"] == "true"
    assert "roll-adjusted" in cols["target_1d"]["description"]
    assert "roll-adjusted" in node["description"]


def test_family_code_versions_cover_every_feature_family_table():
    from chimera_assets import schemas
    from chimera_assets.features.versions import FAMILY_CODE_VERSIONS

    families = (schemas.SESSION_BARS, schemas.MARKET_FEATURES, schemas.PIVOTS, schemas.GOLDEN_ZONE,
                schemas.POLICY_FEATURES, schemas.CONSOLIDATED, schemas.DAILY_ML_MATRIX)
    assert set(FAMILY_CODE_VERSIONS) == {s.name for s in families}
    assert all(v.isdigit() for v in FAMILY_CODE_VERSIONS.values())
