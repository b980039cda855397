"""Fixtures of the eval tests: tiny benchmarks and a fake index that needs no model."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from policyqa.corpus.models import Document
from policyqa.eval import systems
from policyqa.retriever.base import Filters, Hit
from policyqa.settings import Settings

DATA = Path(__file__).parent / "data"
BEIR_TINY = DATA / "beir-tiny"
SQUAD_TINY = DATA / "squad-tiny.json"

WINDOW = 24
STRIDE = 20


def _grams(text: str, n: int) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)}


class FakeRetriever:
    """Scores fixed-size character windows by shared character n-grams (no model, deterministic)."""

    def __init__(self, name: str, chunks: list[tuple[str, str, int, int, str]]) -> None:
        self.name = name
        self.chunks = chunks

    def _score(self, query: str, text: str) -> float:
        bigrams = len(_grams(query, 2) & _grams(text, 2))
        unigrams = len(set(query) & set(text))
        if self.name == "bm25":
            return float(bigrams)
        if self.name == "dense":
            return float(unigrams) if unigrams >= 3 else 0.0
        return float(2 * bigrams + unigrams) if bigrams else 0.0

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]:
        if not query.strip():
            raise ValueError("empty query")
        scored = [(self._score(query, c[4]), c) for c in self.chunks]
        scored = [s for s in scored if s[0] > 0]
        scored.sort(key=lambda s: (-s[0], s[1][0]))
        return [
            Hit(chunk_id=cid, doc_id=did, score=score, rank=i, text=text, start=start, end=end)
            for i, (score, (cid, did, start, end, text)) in enumerate(scored[:top_k], start=1)
        ]

    def batch_search(self, queries: Any, top_k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        return [self.search(q, top_k, filters) for q in queries]


class FakeIndex:
    def __init__(self, documents: list[Document]) -> None:
        self.chunks: list[tuple[str, str, int, int, str]] = []
        for doc in documents:
            starts = range(0, max(1, len(doc.text) - WINDOW + STRIDE), STRIDE)
            for n, start in enumerate(starts):
                end = min(len(doc.text), start + WINDOW)
                self.chunks.append((f"{doc.id}#{n}", doc.id, start, end, doc.text[start:end]))
        self.closed = False

    def retriever(self, name: str) -> FakeRetriever:
        if name not in ("bm25", "dense", "hybrid"):
            raise ValueError(name)
        return FakeRetriever(name, self.chunks)

    def close(self) -> None:
        self.closed = True


class FakePipeline:
    """``build_index``/``open_index`` look-alikes that count their calls."""

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
        docs = list(documents)
        index_dir.mkdir(parents=True, exist_ok=True)
        (index_dir / "docs.json").write_text(json.dumps([d.to_dict() for d in docs], ensure_ascii=False))
        manifest = {
            "counts": {"documents": len(docs), "chunks": len(FakeIndex(docs).chunks)},
            "build_seconds": 0.01,
            "fingerprint": "fake",
        }
        (index_dir / "manifest.json").write_text(json.dumps(manifest))
        return manifest

    def open_index(self, index_dir: Path, settings: Settings) -> FakeIndex:
        self.opens += 1
        docs = json.loads((index_dir / "docs.json").read_text())
        return FakeIndex([Document.from_dict(d) for d in docs])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", index_dir=tmp_path / "index", progress=False)


@pytest.fixture
def fake_pipeline(monkeypatch: pytest.MonkeyPatch) -> FakePipeline:
    """A fake pipeline, also installed as the runner's default."""
    fake = FakePipeline()
    monkeypatch.setattr("policyqa.eval.runner._default_pipeline", lambda: (fake.build_index, fake.open_index))
    return fake


@pytest.fixture
def beir_copy(tmp_path: Path) -> Path:
    """A writable copy of the tiny BEIR benchmark."""
    target = tmp_path / "beir"
    target.mkdir()
    for f in BEIR_TINY.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


@pytest.fixture
def beir_tiny() -> Path:
    return BEIR_TINY


@pytest.fixture
def squad_tiny() -> Path:
    return SQUAD_TINY


@pytest.fixture
def fake_index() -> type[FakeIndex]:
    return FakeIndex


@pytest.fixture
def unavailable_system(monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered system without an implementation (what rerank/answer were before they landed)."""
    name = "later"
    monkeypatch.setitem(systems._REGISTRY, name, systems.SystemSpec(name, "retrieval", None, "not yet"))
    return name
