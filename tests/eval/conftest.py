"""Fixtures of the eval tests: tiny benchmarks, indexed for real with the hashing encoder."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from policyqa import pipeline
from policyqa.corpus.models import Document
from policyqa.eval import systems
from policyqa.index.base import OpenIndex
from policyqa.settings import Settings
from tests.helpers import HashingEncoder

DATA = Path(__file__).parent / "data"


class CountingPipeline:
    """The real embedded pipeline with the hashing encoder (no model to load), counting its
    builds and opens; installed as the runner's default by the ``fake_pipeline`` fixture."""

    def __init__(self) -> None:
        self.builds = 0
        self.opens = 0

    def build_index(
        self,
        documents: Iterable[Document],
        index_dir: Path,
        settings: Settings,
        *,
        show_progress: bool = True,
    ) -> dict[str, Any]:
        self.builds += 1
        return pipeline.build_index(
            documents, index_dir, settings, show_progress=show_progress, encoder=HashingEncoder()
        )

    def open_index(self, index_dir: Path, settings: Settings) -> OpenIndex:
        self.opens += 1
        return pipeline.open_index(index_dir, settings, encoder=HashingEncoder())


def open_tiny_index(documents: Iterable[Document], root: Path) -> OpenIndex:
    """A real embedded index of ``documents`` under ``root`` (hashing encoder)."""
    s = Settings(cache_dir=root / "cache", index_dir=root / "index", progress=False, chunk_max_chars=80)
    pipeline.build_index(documents, s.index_dir, s, show_progress=False, encoder=HashingEncoder())
    return pipeline.open_index(s.index_dir, s, encoder=HashingEncoder())


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For the command line: settings come from the environment, so point the cache and the
    index at tmp_path, turn the bars off and run in tmp_path (no .env is read)."""
    monkeypatch.setenv("POLICYQA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("POLICYQA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("POLICYQA_PROGRESS", "false")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", index_dir=tmp_path / "index", progress=False)


@pytest.fixture
def fake_pipeline(monkeypatch: pytest.MonkeyPatch) -> CountingPipeline:
    """The counting pipeline, installed as the runner's default."""
    fake = CountingPipeline()
    monkeypatch.setattr("policyqa.eval.runner._default_pipeline", lambda: (fake.build_index, fake.open_index))
    return fake


@pytest.fixture
def unavailable_system(monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered system without an implementation (what rerank/answer were before they landed)."""
    name = "later"
    monkeypatch.setitem(systems._REGISTRY, name, systems.SystemSpec(name, "retrieval", None, "not yet"))
    return name
