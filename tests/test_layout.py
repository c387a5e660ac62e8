"""The design card's rules that code can check: arrows point one way, flows -> tasks -> mm15, and the
command line reaches flows only through imports that this test can see."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "mm15" / "cli"
LIBRARY = sorted(p for p in (ROOT / "mm15").rglob("*.py") if CLI not in p.parents)


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def imported_names(path: Path) -> set[str]:
    """ "module:name" for every `from module import name` in the file (function bodies included)."""
    return {
        f"{node.module}:{a.name}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
        for a in node.names
    }


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_never_imports_prefect_flows_or_tasks(path):
    assert not imported_modules(path) & {"prefect", "flows", "tasks"}


def test_mlflow_is_imported_in_one_module():
    """MLflow lives in mm15/tracking.py and the model registry (mm15/registry/) only."""
    importers = [
        p.relative_to(ROOT).as_posix()
        for p in ROOT.joinpath("mm15").rglob("*.py")
        if "mlflow" in imported_modules(p)
    ]
    assert importers
    assert all(p == "mm15/tracking.py" or p.startswith("mm15/registry/") for p in importers), importers


@pytest.mark.parametrize("path", sorted(CLI.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_cli_reaches_prefect_only_through_flows(path):
    """Commands import the flows they run; only orchestration.py (which runs them) touches Prefect."""
    assert "tasks" not in imported_modules(path)
    assert "prefect" not in imported_modules(path) or path.name == "orchestration.py"
    assert "importlib" not in imported_modules(path)  # no flows loaded from strings assembled at run time


@pytest.mark.parametrize(
    "path", sorted((ROOT / "tasks").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_tasks_do_not_import_flows(path):
    assert "flows" not in imported_modules(path)


def test_every_deployed_flow_is_a_command_and_exists():
    """Each prefect.yaml entrypoint flows/X.py:F is imported by a CLI module as `from flows.X import F`."""
    from prefect import Flow

    cli_imports = set().union(*(imported_names(p) for p in CLI.rglob("*.py")))
    entrypoints = [
        d["entrypoint"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    ]
    assert entrypoints
    for entrypoint in entrypoints:
        file, function = entrypoint.split(":")
        module = file.removesuffix(".py").replace("/", ".")
        assert f"{module}:{function}" in cli_imports, entrypoint
        flow = getattr(__import__(module, fromlist=[function]), function)
        assert isinstance(flow, Flow)
    for name in cli_imports:
        if name.startswith("flows."):
            module, function = name.split(":")
            assert isinstance(getattr(__import__(module, fromlist=[function]), function), Flow), name


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_library_modules_stay_short(path):
    """One module, one reason to change: about 300 lines at most (the processor is the exception)."""
    if path.name == "processing.py" and path.parent.name == "model":
        return
    assert len(path.read_text().splitlines()) <= 300, f"{path.name}: split it by concept"
