"""`mm15 mixture build/show/sweep` against a real catalog built by the curation flow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.build_mixture import build_mixture
from flows.curate import curate
from mm15.paths import PROJECT_ROOT

pytestmark = pytest.mark.flow

MICRO_MIX = {
    "name": "micro",
    "batch_size": 20,
    "groups": {
        "single_image": {"weight": 0.75, "alpha": {"general": 1.0}},
        "text_only": {"weight": 0.25, "alpha": {"text_only": 1.0}},
    },
}


@pytest.fixture
def micro_mixture(micro_catalogs):
    (micro_catalogs / "mixtures").mkdir()
    shutil.copy(PROJECT_ROOT / "catalogs" / "mixtures" / "all.yaml", micro_catalogs / "mixtures")
    (micro_catalogs / "mixtures" / "micro.yaml").write_text(yaml.safe_dump(MICRO_MIX))
    return micro_catalogs


def mm15(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "mm15.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_build_is_deterministic_and_show_reports_it(prefect_api, micro_mixture, home):
    snapshot = curate(preset="micro", home=str(home))["snapshot"]
    first = build_mixture(name="micro", samples=200, seed=3, home=str(home))
    data = Path(first["manifest"]).read_bytes()
    again = build_mixture(name="micro", samples=200, seed=3, snapshot=snapshot, home=str(home))
    assert again["manifest_hash"] == first["manifest_hash"] and Path(again["manifest"]).read_bytes() == data
    other = build_mixture(name="micro", samples=200, seed=4, home=str(home))
    assert other["manifest_hash"] != first["manifest_hash"]

    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home)}
    shown = json.loads(mm15(env, "mixture", "show", "micro", "--json").stdout)
    assert shown["snapshot"] == snapshot and shown["manifest_hash"] == other["manifest_hash"]
    assert shown["categories"]["general"]["expected"] == pytest.approx(0.75)
    assert shown["categories"]["general"]["realized"] == pytest.approx(0.75)
    assert shown["categories"]["text_only"]["samples"] == 50


def test_cli_errors_and_sweep(prefect_api, micro_mixture, home, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home)}
    curate(preset="micro", home=str(home))
    missing = mm15(env, "mixture", "build", "all")  # the micro catalog has no text_rich, science, ...
    assert missing.returncode == 2 and "text_rich" in missing.stderr and "Traceback" not in missing.stderr
    unknown = mm15(env, "mixture", "build", "nope")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert mm15(env, "mixture", "show", "micro").returncode == 2  # not built yet

    out = tmp_path / "variants"
    swept = mm15(
        env, "mixture", "sweep", "micro", "--group", "text_only", "--weights", "0.1,0.5", "--out", str(out)
    )
    assert swept.returncode == 0, swept.stderr
    names = sorted(p.stem for p in out.glob("*.yaml"))
    assert names == ["micro-text_only-w0.1", "micro-text_only-w0.5"]
    variant = yaml.safe_load((out / "micro-text_only-w0.5.yaml").read_text())
    assert variant["groups"]["text_only"]["weight"] == pytest.approx(0.5)
    built = mm15(env, "mixture", "build", str(out / "micro-text_only-w0.5.yaml"), "--samples", "100")
    assert built.returncode == 0, built.stderr
    assert "micro-text_only-w0.5" in built.stdout
