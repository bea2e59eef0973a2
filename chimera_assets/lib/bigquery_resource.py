"""The BigQuery warehouse as a Dagster resource, built on dagster-gcp's ``BigQueryResource``.

Its fields are the BigQuery settings (project, location, dataset prefix, staging dataset, byte cap, job
timeout, credentials), so the Dagster UI shows how the warehouse is configured; secrets and the project
come from ``EnvVar`` so the UI shows the variable's name, never its value. Imported only when
``CHIMERA_WAREHOUSE=bigquery`` (dagster-gcp costs ~0.8 s of imports that DuckDB users need not pay).

Client lifetime: ``get_client()`` builds a client, yields it and closes it; the warehouse enters it once
per operation and keeps nothing afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_gcp import BigQueryResource
from pydantic import Field

from chimera_assets.lib.io_manager import WarehouseResource
from chimera_assets.settings import (
    DEFAULT_JOB_TIMEOUT_S,
    DEFAULT_MAX_BYTES_BILLED,
    DEFAULT_STAGING_TTL_HOURS,
    Settings,
    get_settings,
    process_env,
)
from chimera_assets.warehouse.base import Warehouse
from chimera_assets.warehouse.bigquery_client import make_client


class BigQueryWarehouseResource(WarehouseResource, BigQueryResource):
    """Chimera's warehouse on BigQuery (project/location/``gcp_credentials`` as in dagster-gcp)."""

    dataset_prefix: str = Field(default="", description="Prefix of the five dataset names (e.g. 'dev_').")
    staging_dataset: str | None = Field(
        default=None, description="Dataset of the staging tables (default '<prefix>staging'); its tables expire."
    )
    staging_ttl_hours: float = Field(
        default=DEFAULT_STAGING_TTL_HOURS, description="Expiration of staging tables, hours (>= 6)."
    )
    maximum_bytes_billed: int = Field(
        default=DEFAULT_MAX_BYTES_BILLED,
        description="Byte cap of every query job: BigQuery refuses a query that would bill more.",
    )
    job_timeout_s: float = Field(
        default=DEFAULT_JOB_TIMEOUT_S, description="Timeout of every query and load job, seconds."
    )
    credentials_json: str | None = Field(
        default=None,
        description="A service-account key as JSON text (set it with EnvVar); else gcp_credentials (base64) or "
        "application default credentials.",
    )
    endpoint: str | None = Field(default=None, description="A BigQuery emulator's URL (tests only).")

    @contextmanager
    def get_client(self) -> Iterator[Any]:
        """A client for one operation, closed when the block ends."""
        if self.gcp_credentials and not (self.endpoint or self.credentials_json):
            with super().get_client() as client:
                try:
                    yield client
                finally:
                    client.close()
            return
        env = {"CHIMERA_BQ_CREDENTIALS_JSON": self.credentials_json} if self.credentials_json else {}
        client = make_client(self.project, self.location, self.endpoint, env=env)
        try:
            yield client
        finally:
            client.close()

    def settings(self) -> Settings:
        import dataclasses

        return dataclasses.replace(
            get_settings(),
            warehouse="bigquery",
            bq_project=self.project,
            bq_location=self.location or "US",
            bq_dataset_prefix=self.dataset_prefix,
            bq_endpoint=self.endpoint,
            bq_staging_dataset=self.staging_dataset,
            bq_staging_ttl_hours=self.staging_ttl_hours,
            bq_max_bytes_billed=self.maximum_bytes_billed,
            bq_job_timeout_s=self.job_timeout_s,
        )

    def _build(self, settings: Settings) -> Warehouse:
        from chimera_assets.warehouse.bigquery_backend import BigQueryWarehouse

        labels = {"dagster_run": self._run_id} if self._run_id else None
        return BigQueryWarehouse.from_bigquery_resource(self, self.settings(), labels=labels)

    def get(self) -> Warehouse:
        """One warehouse per resource instance (its settings are the resource's fields)."""
        if "bigquery" not in self._warehouses:
            self._warehouses["bigquery"] = self._build(self.settings())
        return self._warehouses["bigquery"]


def _env(name: str, env: dict[str, str]) -> Any:
    """``EnvVar(name)`` when the variable is set (the UI shows its name, not its value), else None."""
    return dg.EnvVar(name) if env.get(name) else None


def bigquery_resource_from_env(env: dict[str, str] | None = None) -> BigQueryWarehouseResource:
    """The resource the environment describes (``CHIMERA_BQ_*``, see ``settings.py``)."""
    env = process_env() if env is None else dict(env)
    s = get_settings(env)
    return BigQueryWarehouseResource(
        project=_env("CHIMERA_BQ_PROJECT", env),
        location=s.bq_location,
        dataset_prefix=s.bq_dataset_prefix,
        staging_dataset=s.bq_staging_dataset,
        staging_ttl_hours=s.bq_staging_ttl_hours,
        maximum_bytes_billed=s.bq_max_bytes_billed,
        job_timeout_s=s.bq_job_timeout_s,
        credentials_json=_env("CHIMERA_BQ_CREDENTIALS_JSON", env),
        endpoint=s.bq_endpoint,
    )
