"""Read-only connections, sealed: they read their catalog's data files and nothing else.

DuckDB's own settings stop file access outside the data path and any change of settings. The metadata
extensions (sqlite, postgres) open databases by themselves, past those settings: read-only queries may
not call their functions, nor the few others that would let a query change files or hide such a call.
"""

from __future__ import annotations

import json
import re

import duckdb

from mm15.catalog.backend import Location

# Refused in read-only queries, besides what the metadata extensions add: the table functions that run
# SQL built from strings (they would hide a call from the check), and DuckLake's maintenance (a read-only
# attach stops its metadata writes, not its data file writes), as ducklake_NAME or lake.NAME.
_MAINTENANCE = [
    "add_data_files",
    "cleanup_old_files",
    "commit",
    "delete_orphaned_files",
    "expire_snapshots",
    "flush_inlined_data",
    "merge_adjacent_files",
    "rewrite_data_files",
    "set_commit_message",
    "set_option",
]
ALWAYS_REFUSED = frozenset(["query", "query_table", *_MAINTENANCE, *(f"ducklake_{n}" for n in _MAINTENANCE)])


def seal(con: duckdb.DuckDBPyConnection, location: Location) -> None:
    """Let the connection read its catalog's data files and nothing else, for good."""
    con.execute("SET allowed_directories = [?]", [location.data_path])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def refused_call(con: duckdb.DuckDBPyConnection, sql: str, refused: frozenset[str]) -> str | None:
    """The first function of `refused` that read statement `sql` calls, or None. A sealed connection
    cannot open files, but the sqlite and postgres extensions open databases by themselves."""
    text = re.sub(r"^\s*explain(\s+analy[sz]e)?\b", "", sql, flags=re.IGNORECASE)  # EXPLAIN SELECT -> SELECT
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0])
    except duckdb.Error:
        tree = {"error": True}
    # Only SELECTs serialise: for anything else, refuse any word that names such a function.
    failed = tree.get("error")
    names = set(re.findall(r"[a-z_][a-z0-9_]*", sql.lower())) if failed else set(_called(tree))
    hits = sorted(names & refused)
    return hits[0] if hits else None


def _called(node: object):
    """Every function name in a serialised parse tree."""
    if isinstance(node, dict):
        if isinstance(node.get("function_name"), str):
            yield node["function_name"].lower()
        for value in node.values():
            yield from _called(value)
    elif isinstance(node, list):
        for value in node:
            yield from _called(value)
