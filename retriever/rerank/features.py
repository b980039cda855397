"""The feature reranker: a linear learning-to-rank model over interpretable candidate features."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.corpus.text import split_sentences
from policyqa.index.base import OpenIndex, TermStatistics
from policyqa.index.tokenizer import ChineseTokenizer
from policyqa.retriever.base import Hit
from policyqa.retriever.terms import QueryTerms, TermStats

from .base import apply_rerank_scores, check_rerank_top_k, document_best

__all__ = ["DEFAULT_FEATURE_MODEL", "FEATURE_NAMES", "FeatureModel", "FeatureReranker", "candidate_features"]

logger = logging.getLogger(__name__)

#: The shipped weights of :class:`FeatureReranker`.
DEFAULT_FEATURE_MODEL = "rerank_features.json"

#: Feature names, in the order of the model's weight vector.
FEATURE_NAMES: tuple[str, ...] = (
    "fused_rank",  # -log(fused rank)
    "bm25_rank",  # -log(bm25 rank), missing = beyond the candidate depth
    "dense_rank",  # -log(dense rank)
    "bm25_rel",  # bm25 / max bm25 over the candidates
    "dense_gap",  # dense - max dense over the candidates (cosine units)
    "cov_passage",  # IDF-weighted query-term coverage of title + heading + text
    "cov_text",  # … of the chunk text alone
    "cov_sentence",  # … of the best sentence of the chunk
    "cov_title",  # … of the document title
    "bigram_cov",  # query bigram coverage of the chunk text
    "bigram_sentence",  # … of the best sentence
    "number_match",  # share of the query's numbers found in the passage
    "doc_support",  # log(1 + other chunks of the same document among the candidates)
    "doc_best",  # the document's best fused rank among the candidates: -log(rank)
    "doc_cov",  # coverage of the union of the document's candidate passages
)


def candidate_features(
    qt: QueryTerms, hits: Sequence[Hit], depth: int | None = None
) -> npt.NDArray[np.float64]:
    """The ``(len(hits), len(FEATURE_NAMES))`` feature matrix of the candidates of one query."""
    n = len(hits)
    x = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float64)
    if n == 0:
        return x
    missing = float(depth or max(100, n)) + 1.0
    bm = np.array([h.scores.get("bm25", 0.0) for h in hits], dtype=np.float64)
    de = np.array([h.scores.get("dense", 0.0) for h in hits], dtype=np.float64)
    bm_max = float(bm.max()) if bm.size and bm.max() > 0 else 1.0
    de_max = float(de.max()) if de.size else 0.0
    doc_count: dict[str, int] = {}
    doc_best: dict[str, int] = {}
    doc_text: dict[str, list[str]] = {}
    for i, h in enumerate(hits, start=1):
        doc_count[h.doc_id] = doc_count.get(h.doc_id, 0) + 1
        doc_best.setdefault(h.doc_id, h.ranks.get("fused", i))
        doc_text.setdefault(h.doc_id, [h.title] if h.title else []).append(h.text)
    doc_cov = {d: qt.coverage("\n".join(parts)) for d, parts in doc_text.items()}
    for i, h in enumerate(hits):
        fused_rank = h.ranks.get("fused", h.rank or i + 1)
        passage = "\n".join(p for p in (h.title, h.heading, h.text) if p)
        sents = split_sentences(h.text)
        cov_s = max((qt.coverage(h.text[s:e]) for s, e in sents), default=0.0)
        big_s = max((qt.bigram_coverage(h.text[s:e]) for s, e in sents), default=0.0)
        x[i] = (
            -math.log(fused_rank),
            -math.log(h.ranks.get("bm25", missing)),
            -math.log(h.ranks.get("dense", missing)),
            bm[i] / bm_max,
            de[i] - de_max,
            qt.coverage(passage),
            qt.coverage(h.text),
            cov_s,
            qt.coverage(h.title) if h.title else 0.0,
            qt.bigram_coverage(h.text),
            big_s,
            qt.number_match(passage),
            math.log1p(doc_count[h.doc_id] - 1),
            -math.log(doc_best[h.doc_id]),
            doc_cov[h.doc_id],
        )
    return x


@dataclass(slots=True)
class FeatureModel:
    """A linear model over standardised features: ``score = Σ w_i (x_i - mean_i) / std_i``."""

    features: tuple[str, ...]
    weights: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]
    info: dict[str, Any] = field(default_factory=dict)

    def score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        z = (x - self.mean) / self.std
        out: npt.NDArray[np.float64] = z @ self.weights
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "kind": "linear",
            "features": list(self.features),
            "weights": [round(float(w), 6) for w in self.weights],
            "mean": [round(float(m), 6) for m in self.mean],
            "std": [round(float(s), 6) for s in self.std],
            "info": self.info,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureModel:
        if data.get("format") != 1 or data.get("kind") != "linear":
            raise ValueError("not a policyqa linear rerank model (format 1)")
        features = tuple(str(f) for f in data["features"])
        unknown = [f for f in features if f not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"rerank model uses unknown features {unknown}")
        w = np.asarray(data["weights"], dtype=np.float64)
        mean = np.asarray(data["mean"], dtype=np.float64)
        std = np.asarray(data["std"], dtype=np.float64)
        if not (len(features) == w.size == mean.size == std.size):
            raise ValueError("rerank model: features, weights, mean and std differ in length")
        std = np.where(std > 1e-12, std, 1.0)
        return cls(features, w, mean, std, dict(data.get("info") or {}))

    @classmethod
    def load(cls, path: Path | None = None) -> FeatureModel:
        """The model at ``path``, or the shipped one."""
        if path is None:
            text = (resources.files("policyqa.retriever") / "data" / DEFAULT_FEATURE_MODEL).read_text(
                encoding="utf-8"
            )
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
                data = json.loads(text)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(
                    f"{Path(path).name} is not a feature model JSON: for the 'sentence' and 'features' "
                    "rerankers rerank_model names one (python -m policyqa.train.rerank writes it); "
                    "a cross-encoder or its adapter goes with reranker 'cross-encoder'"
                ) from exc
            return cls.from_json(data)
        return cls.from_json(json.loads(text))

    def select(self, x_all: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The columns of a full feature matrix that this model uses, in its order."""
        cols = [FEATURE_NAMES.index(f) for f in self.features]
        out: npt.NDArray[np.float64] = x_all[:, cols]
        return out


class FeatureReranker:
    """The default reranker: a linear model over interpretable features (see the module doc).

    :param tokenizer: the index's tokenizer (``index.tokenizer``), for query terms.
    :param bm25_index: the index's BM25 index (``index.bm25``), for term IDFs.
    :param model_path: a model JSON written by ``policyqa.train.rerank``; None: the
        shipped one.
    :param depth: the candidate depth of the retriever (rank used for "not retrieved").
    :param group_by_document: rank documents by their best chunk's model score and keep the
        retriever's order among the chunks of one document (default). The model is trained on
        document-level relevance, so its chunk-level weights say little about which chunk of a
        document answers; the retriever's order does.
    """

    name = "features"

    def __init__(
        self,
        tokenizer: ChineseTokenizer | None = None,
        bm25_index: TermStatistics | None = None,
        model_path: Path | None = None,
        depth: int | None = None,
        group_by_document: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.group_by_document = group_by_document
        self.stats = TermStats(bm25_index)
        self.model_path = Path(model_path) if model_path is not None else None
        self.depth = depth
        self._model: FeatureModel | None = None

    @classmethod
    def for_index(cls, index: OpenIndex, model_path: Path | None = None) -> FeatureReranker:
        """The reranker over ``index``'s tokenizer and BM25 statistics."""
        return cls(index.tokenizer, index.bm25, model_path, index.settings.candidate_depth)

    def warm_up(self) -> None:
        """Load the weights, the IDF table and the tokenizer."""
        if self._model is None:
            self._model = FeatureModel.load(self.model_path)
        self.stats.idf("")
        warm = self.tokenizer.warm_up if self.tokenizer is not None else None
        if callable(warm):
            warm()

    @property
    def model(self) -> FeatureModel:
        self.warm_up()
        assert self._model is not None  # set by warm_up
        return self._model

    def features(self, query: str, hits: Sequence[Hit]) -> npt.NDArray[np.float64]:
        """The full feature matrix (all of :data:`FEATURE_NAMES`) of the candidates."""
        qt = QueryTerms.of(query, self.tokenizer, self.stats)
        return candidate_features(qt, hits, self.depth)

    def model_scores(self, query: str, hits: Sequence[Hit]) -> list[float]:
        """The linear model's score of each candidate (before grouping by document)."""
        model = self.model
        out: list[float] = model.score(model.select(self.features(query, hits))).tolist()
        return out

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        check_rerank_top_k(top_k)
        if not hits:
            return []
        scores = self.model_scores(query, hits)
        if self.group_by_document:
            scores = document_best(hits, scores)
        return apply_rerank_scores(hits, scores, top_k)
