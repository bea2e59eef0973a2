"""Dagster-layer code shared by the domain packages."""
