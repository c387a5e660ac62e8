"""SFT mixtures: specs (YAML under catalogs/mixtures/), deterministic manifests built from a catalog
snapshot with DuckDB, their summaries and renderings, and ablation sweeps.

    spec = load_spec("all")
    summary = build_manifest(con, spec, samples=N, seed=S, snapshot=ID, out=path)
    print(render_text(read_summary(path)))
"""

from mm15.mixture.build import build_manifest
from mm15.mixture.manifest import MANIFEST_SCHEMA, content_hash, read_lineage, read_manifest
from mm15.mixture.report import plot_shares, render_text, summary_table, to_json
from mm15.mixture.spec import (
    Component,
    Group,
    MixtureSpec,
    check_against_catalog,
    component_shares,
    default_mixtures_dir,
    expected_shares,
    load_spec,
    spec_from_dict,
    spec_path,
    spec_to_dict,
)
from mm15.mixture.summary import ManifestSummary, Share, read_summary, summary_path
from mm15.mixture.sweep import sweep_specs, write_spec, write_sweep

__all__ = [
    "MANIFEST_SCHEMA",
    "Component",
    "Group",
    "ManifestSummary",
    "MixtureSpec",
    "Share",
    "build_manifest",
    "check_against_catalog",
    "component_shares",
    "content_hash",
    "default_mixtures_dir",
    "expected_shares",
    "load_spec",
    "plot_shares",
    "read_lineage",
    "read_manifest",
    "read_summary",
    "render_text",
    "spec_from_dict",
    "spec_path",
    "spec_to_dict",
    "summary_path",
    "summary_table",
    "sweep_specs",
    "to_json",
    "write_spec",
    "write_sweep",
]
