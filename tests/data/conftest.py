"""Fixtures for the format adapters: small real sources built in `tmp_path`, valid and corrupt.

The builders are plain functions in `tests/fixtures_formats.py` so other test folders can use them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures_formats import (
    make_hf_parquet_source,
    make_jsonl_text_source,
    make_llava_source,
    make_source,
    make_wds_ocr_source,
)


@pytest.fixture
def build_source(tmp_path: Path) -> Callable[[str, bool], Path]:
    """`build_source(fmt, corrupt)`: a fixture source of that format in this test's tmp_path."""
    return lambda fmt, corrupt=False: make_source(
        fmt, tmp_path / ("corrupt" if corrupt else "valid"), corrupt
    )


@pytest.fixture
def llava_source(tmp_path: Path) -> Path:
    return make_llava_source(tmp_path)


@pytest.fixture
def hf_parquet_source(tmp_path: Path) -> Path:
    return make_hf_parquet_source(tmp_path)


@pytest.fixture
def wds_ocr_source(tmp_path: Path) -> Path:
    return make_wds_ocr_source(tmp_path)


@pytest.fixture
def corrupt_wds_ocr_source(tmp_path: Path) -> Path:
    return make_wds_ocr_source(tmp_path, corrupt=True)


@pytest.fixture
def jsonl_text_source(tmp_path: Path) -> Path:
    return make_jsonl_text_source(tmp_path)
