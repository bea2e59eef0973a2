"""BigQuery building blocks with no warehouse state: schema translation, typed query parameters,
credentials and client construction, and credential-free error text.

Credentials, in order: an emulator ``endpoint`` (anonymous); ``CHIMERA_BQ_CREDENTIALS_JSON`` (a
service-account key as JSON text); otherwise Google's application default credentials, which include a
key file named by ``GOOGLE_APPLICATION_CREDENTIALS``. Credentials are never logged and never appear in
an error message (no exception chain that could quote a key is ever attached).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from chimera_assets.schemas import Column, TableSpec
from chimera_assets.settings import bq_credentials_json
from chimera_assets.warehouse.base import WarehouseError

BIGQUERY_SCOPES = ("https://www.googleapis.com/auth/bigquery",)
# Project ids: lower-case letters, digits, hyphens, optionally "domain.tld:" in front (legacy).
PROJECT_ID = re.compile(r"^(?:[a-z0-9.\-]+:)?[a-z][a-z0-9\-]{0,62}$")


class BigQueryCredentialsError(WarehouseError):
    """No usable credentials (the message says where they were looked for, never what they are)."""


def schema_field(col: Column):
    """``bigquery.SchemaField`` for a spec column (RECORD with sub-fields for STRUCT)."""
    from google.cloud import bigquery

    mode = "NULLABLE" if col.nullable else "REQUIRED"
    if col.type == "STRUCT":
        return bigquery.SchemaField(
            col.name, "RECORD", mode=mode, fields=[schema_field(f) for f in col.fields],
            description=col.description or None,
        )
    return bigquery.SchemaField(col.name, col.type, mode=mode, description=col.description or None)


def bigquery_schema(spec: TableSpec) -> list:
    return [schema_field(c) for c in spec.columns]


def schema_as_list(fields: Sequence) -> list[dict]:
    """SchemaFields as plain nested data: [{"name", "type", "mode", "fields": [...]}]."""
    out = []
    for f in fields:
        ftype = _LEGACY_TYPES.get(f.field_type, f.field_type)
        item: dict[str, Any] = {"name": f.name, "type": ftype, "mode": f.mode or "NULLABLE"}
        if f.fields:
            item["fields"] = schema_as_list(f.fields)
        out.append(item)
    return out


_LEGACY_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def evolve(have: list, want: Sequence[Column], path: str, problems: list[str], added: list[str]) -> list:
    """``have`` (SchemaFields) with the ``want`` columns it lacks appended, recursively into RECORDs.
    Type conflicts and missing REQUIRED columns go to ``problems``; appended names to ``added``."""
    by_name = {f.name: f for f in have}
    out = list(have)
    for col in want:
        name = f"{path}{col.name}"
        field = by_name.get(col.name)
        if field is None:
            if not col.nullable:
                problems.append(f"REQUIRED column {name} is missing (cannot be added to a table)")
                continue
            out.append(schema_field(col))
            added.append(name)
            continue
        have_type = _LEGACY_TYPES.get(field.field_type, field.field_type)
        if have_type != col.type:
            problems.append(f"{name} is {have_type}, the spec says {col.type}")
            continue
        if col.type == "STRUCT":
            sub = evolve(list(field.fields), col.fields, f"{name}.", problems, added)
            if len(sub) != len(field.fields):
                api = field.to_api_repr()
                api["fields"] = [f.to_api_repr() for f in sub]
                out[out.index(field)] = type(field).from_api_repr(api)
    return out


def query_parameter(name: str, value: Any):
    """A typed ``ScalarQueryParameter`` (DATE for dates, STRING for symbols, ...)."""
    from google.cloud import bigquery

    if isinstance(value, dt.datetime):
        kind = "TIMESTAMP"
    elif isinstance(value, dt.date):
        kind = "DATE"
    elif isinstance(value, bool):
        kind = "BOOL"
    elif isinstance(value, int):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, str):
        kind = "STRING"
    else:
        raise TypeError(f"unsupported query parameter type for {name}: {type(value).__name__}")
    return bigquery.ScalarQueryParameter(name, kind, value)


@contextmanager
def quiet_storage_deprecation() -> Iterator[None]:
    """google-cloud-bigquery 3.47 warns (PendingDeprecation) on every Storage Read page it turns into
    arrow, suggesting pandas-gbq; the path works (it is the library's own), so keep the logs clean."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Retrieving Arrow record batches directly", category=PendingDeprecationWarning
        )
        yield


def error_text(exc: BaseException) -> str:
    """A short, credential-free description of a Google API error."""
    message = getattr(exc, "message", None) or str(exc)
    errors = getattr(exc, "errors", None) or []
    reasons = sorted({e.get("reason") for e in errors if isinstance(e, dict) and e.get("reason")})
    text = f"{type(exc).__name__}: {message}"
    if reasons:
        text += f" (reason: {', '.join(reasons)})"
    return text[:2000]


def make_client(
    project: str | None,
    location: str | None = None,
    endpoint: str | None = None,
    env: dict[str, str] | None = None,
):
    """A ``bigquery.Client`` with credentials found the usual ways (see the module docstring)."""
    from google.cloud import bigquery

    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=project or "test", location=location, credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
    from google.auth import exceptions as auth_exceptions

    credentials = None
    key_json = bq_credentials_json(env)
    if key_json:
        credentials, key_project = credentials_from_json(key_json)
        project = project or key_project
    failure = None
    try:
        return bigquery.Client(project=project, location=location, credentials=credentials)
    except (auth_exceptions.GoogleAuthError, OSError) as exc:
        failure = type(exc).__name__
    # Raised outside the except block so no exception chain (which could quote a key) is attached.
    raise BigQueryCredentialsError(
        "no BigQuery credentials/project: set CHIMERA_BQ_PROJECT and either run "
        "`gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a key "
        f"file, or CHIMERA_BQ_CREDENTIALS_JSON to a key's JSON text ({failure})"
    )


def credentials_from_json(key_json: str):
    """Service-account credentials from the key's JSON text, and the key's project."""
    from google.oauth2 import service_account

    try:
        info = json.loads(key_json)
        credentials = service_account.Credentials.from_service_account_info(info, scopes=BIGQUERY_SCOPES)
        return credentials, info.get("project_id")
    except Exception:
        pass
    # Outside the except block: the decode error holds the key text, it must not be chained.
    raise BigQueryCredentialsError("CHIMERA_BQ_CREDENTIALS_JSON is set but is not a valid service-account key")
