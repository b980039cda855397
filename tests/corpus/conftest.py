"""Fixtures of the corpus tests: the fixture folder and the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Small fixture files committed with the tests.
CORPUS_DATA = Path(__file__).resolve().parent / "data"
#: ``../shared/data`` beside the repository (not committed; tests skip without it).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def corpus_data() -> Path:
    return CORPUS_DATA


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (absent on this machine)")
    return SHARED_DATA
