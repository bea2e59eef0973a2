"""The code location's ``warehouse`` resource, chosen by the settings.

Its own module so that neither the IO manager nor the BigQuery resource imports the other: the
BigQuery resource subclasses ``io_manager.WarehouseResource``, and this factory needs both.
"""

from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.settings import get_settings


def warehouse_resource() -> WarehouseResource:
    """The ``warehouse`` resource of the code location: ``WarehouseResource()`` (DuckDB, zero config) or,
    with ``CHIMERA_WAREHOUSE=bigquery``, a ``BigQueryWarehouseResource`` whose fields read the
    environment (secrets and the project as ``EnvVar``, so the UI shows the variable, not the value)."""
    if get_settings().warehouse != "bigquery":
        return WarehouseResource()
    # Imported only here: dagster-gcp costs ~0.8 s of imports that DuckDB users need not pay.
    from chimera_assets.lib.bigquery_resource import bigquery_resource_from_env

    return bigquery_resource_from_env()
