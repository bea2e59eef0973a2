"""Dagster-layer code shared by the domain packages (checks, IO manager, resources, automation)."""
