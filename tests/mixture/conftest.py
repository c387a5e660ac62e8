"""The `catalog` fixture: a connection to a realistic small catalog (see fixtures.REALISTIC)."""

from pathlib import Path

import pytest

from tests.mixture.fixtures import REALISTIC, connect, write_catalog


@pytest.fixture
def catalog(tmp_path: Path):
    con = connect(write_catalog(tmp_path / "catalog.parquet", REALISTIC))
    yield con
    con.close()
