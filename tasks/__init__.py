"""Thin Prefect tasks around mm15 functions: retries, caching, artifacts. They pass paths and small dicts."""
