"""The design card's rules that code can check: arrows point one way, flows -> tasks -> mm15."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "path", sorted((ROOT / "mm15").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_library_never_imports_prefect_flows_or_tasks(path):
    assert not imported_modules(path) & {"prefect", "flows", "tasks"}


@pytest.mark.parametrize(
    "path", sorted((ROOT / "tasks").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_tasks_do_not_import_flows(path):
    assert "flows" not in imported_modules(path)
