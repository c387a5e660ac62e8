"""Prefect flows: each composes tasks and reads like the runbook of one pipeline stage."""
