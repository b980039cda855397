"""The rerank stage: re-order a retriever's candidates with a finer (and slower) scorer.

Every reranker implements :class:`Reranker`: ``rerank(query, hits, top_k) -> hits``. The hits
come back re-ranked, each with the score breakdown it had (``bm25``, ``dense``, ``fused`` and
their ranks) plus ``scores["rerank"]`` and ``ranks["rerank"]``; ``Hit.score`` and ``Hit.rank``
become the rerank score and rank.

Four implementations:

``NoReranker`` (``none``)
    Keeps the retriever's order.
``SentenceReranker`` (``sentence``, the default)
    Sentence-level dense max-sim: each candidate's best sentence similarity to the question
    (sentences embedded at index time with the index's encoder, read from the embedding cache)
    fused with the retriever's score and the feature model's score (below). Weights chosen on
    the ncpqa-dev train half; results per half in ``eval/results/``.
``FeatureReranker`` (``features``)
    A linear learning-to-rank model over interpretable features of each candidate (its BM25 and
    dense scores and ranks, the fused rank, IDF-weighted query-term coverage of the passage, of
    its best sentence and of the document title, character-bigram coverage, number match and
    how strongly the rest of its document is represented among the candidates). It needs
    nothing but the index that is already open, runs in a few milliseconds for 20 candidates
    on 2 CPU cores, and its weights are a small JSON file (``retriever/data/rerank_features.json``)
    written by ``python -m policyqa.retriever.train_rerank``.
``CrossEncoderReranker`` (``cross-encoder``)
    Any sentence-transformers ``CrossEncoder`` by name or local path (e.g. bge-reranker-v2-m3,
    bce-reranker-base_v1); batched, inputs cut at ``max_length`` tokens; when the model directory
    holds an int8 ONNX export (``onnx/model_int8.onnx``, see :func:`export_cross_encoder_onnx`)
    it runs that with onnxruntime instead of torch.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from policyqa.corpus.text import (
    QUESTION_CHARS,
    char_bigrams,
    embedding_sentence_spans,
    query_bigrams,
    split_sentences,
)

from .base import Hit

__all__ = [
    "DEFAULT_FEATURE_MODEL",
    "DEFAULT_FEATURE_WEIGHT",
    "DEFAULT_SENTENCE_WEIGHT",
    "FEATURE_NAMES",
    "CrossEncoderReranker",
    "FeatureModel",
    "FeatureReranker",
    "NoReranker",
    "QueryTerms",
    "Reranker",
    "SentenceReranker",
    "TermStats",
    "apply_rerank_scores",
    "candidate_features",
    "document_best",
    "export_cross_encoder_onnx",
]

logger = logging.getLogger(__name__)

#: The shipped weights of :class:`FeatureReranker`.
DEFAULT_FEATURE_MODEL = "rerank_features.json"
ONNX_INT8_NAME = "model_int8.onnx"
ONNX_FP32_NAME = "model.onnx"

CrossEncoderBackend = Literal["auto", "torch", "onnx-int8"]


@runtime_checkable
class Reranker(Protocol):
    """Re-orders candidate hits for a query.

    ``rerank`` returns at most ``top_k`` (all when None) of ``hits``, best first, ranks from 1,
    each hit keeping its earlier ``scores``/``ranks`` and gaining ``scores["rerank"]`` and
    ``ranks["rerank"]``. An empty ``hits`` gives an empty list.
    """

    name: str

    def warm_up(self) -> None: ...

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]: ...


def apply_rerank_scores(
    hits: Sequence[Hit], scores: Sequence[float], top_k: int | None = None, stage: str = "rerank"
) -> list[Hit]:
    """Hits sorted by ``scores`` (descending; ties keep the earlier order), ranks renumbered.

    The breakdown of every hit gains ``scores[stage]`` and ``ranks[stage]``.
    """
    if len(scores) != len(hits):
        raise ValueError(f"{len(scores)} scores for {len(hits)} hits")
    order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), i))
    if top_k is not None:
        order = order[:top_k]
    out: list[Hit] = []
    for new_rank, i in enumerate(order, start=1):
        h = hits[i]
        s = dict(h.scores)
        s[stage] = float(scores[i])
        r = dict(h.ranks)
        r[stage] = new_rank
        out.append(replace(h, score=float(scores[i]), rank=new_rank, scores=s, ranks=r))
    return out


def document_best(hits: Sequence[Hit], scores: Sequence[float]) -> list[float]:
    """Each hit's score replaced by the best score of its document's hits.

    Sorting by the result ranks documents by their best chunk; the chunks of one document tie,
    and :func:`apply_rerank_scores` keeps ties in the retriever's order.
    """
    best: dict[str, float] = {}
    for h, sc in zip(hits, scores, strict=True):
        best[h.doc_id] = max(float(sc), best.get(h.doc_id, float(sc)))
    return [best[h.doc_id] for h in hits]


def _check_top_k(top_k: int | None) -> int | None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    return top_k


class NoReranker:
    """Keeps the retriever's order (``rerank`` = ``none``)."""

    name = "none"

    def warm_up(self) -> None:
        """Nothing to load."""

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        _check_top_k(top_k)
        kept = list(hits)[:top_k] if top_k is not None else list(hits)
        return [h.with_rank(i) for i, h in enumerate(kept, start=1)]


_NUM = re.compile(r"\d+(?:[.,]\d+)*")


class TermStats:
    """Inverse document frequencies of the index's BM25 vocabulary (chunks as documents).

    Unknown terms get the largest IDF (they are rare). Built lazily from the BM25 index's
    document frequencies (:meth:`~policyqa.index.bm25.BM25Index.term_statistics`); without a
    BM25 index (e.g. the Milvus backend) every term has IDF 1.
    """

    def __init__(self, bm25_index: Any = None) -> None:
        self._bm25 = bm25_index
        self._vocab: dict[str, int] | None = None
        self._idf: npt.NDArray[np.float64] | None = None
        self._max = 1.0
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._vocab is not None:
                return
            stats = getattr(self._bm25, "term_statistics", None)
            if stats is None:
                self._vocab, self._idf, self._max = {}, np.ones(0), 1.0
                return
            vocab, df_arr, n_rows = stats()
            df = np.asarray(df_arr, dtype=np.float64)
            n = float(max(1, n_rows))
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            self._vocab = vocab
            self._idf = idf
            self._max = float(idf.max()) if idf.size else 1.0

    def idf(self, term: str) -> float:
        self._load()
        assert self._vocab is not None and self._idf is not None  # set by _load
        if not self._vocab:
            return 1.0
        i = self._vocab.get(term)
        if i is None or i >= self._idf.size:
            return self._max
        return float(self._idf[i])


@dataclass(slots=True)
class QueryTerms:
    """A query prepared for feature computation: weighted terms, bigrams and numbers."""

    text: str
    terms: dict[str, float]
    bigrams: set[str]
    numbers: set[str]

    @property
    def total_weight(self) -> float:
        return sum(self.terms.values()) or 1.0

    @classmethod
    def of(cls, query: str, tokenizer: Any, stats: TermStats) -> QueryTerms:
        tokens = tokenizer.tokenize(query) if tokenizer is not None else []
        terms: dict[str, float] = {}
        for t in tokens:
            if all(ch in QUESTION_CHARS for ch in t):
                continue
            terms[t] = stats.idf(t)
        return cls(query, terms, query_bigrams(query), set(_NUM.findall(query)))

    def coverage(self, text: str) -> float:
        """IDF-weighted share of the query terms that occur in ``text`` (case-folded)."""
        if not self.terms:
            return 0.0
        low = text.lower()
        return sum(w for t, w in self.terms.items() if t in low) / self.total_weight

    def bigram_coverage(self, text: str) -> float:
        if not self.bigrams:
            return 0.0
        return len(self.bigrams & char_bigrams(text)) / len(self.bigrams)

    def number_match(self, text: str) -> float:
        """1 when every number of the query occurs in ``text`` (also when it has none)."""
        if not self.numbers:
            return 1.0
        found = set(_NUM.findall(text))
        return len(self.numbers & found) / len(self.numbers)


# --------------------------------------------------------------------------------------------
# the sentence reranker (the default)

#: Weights of the best sentence's similarity and of the feature model's score against the
#: retriever's score (all z-scored over the candidates). Chosen together on the ncpqa-dev train
#: half from a grid of 0…1 (``python -m policyqa.eval.probe_sentence_rerank``, table in
#: ``eval/results/probe-sentence-rerank-ncpqa.md``) and scored on the test half.
DEFAULT_SENTENCE_WEIGHT = 0.5
DEFAULT_FEATURE_WEIGHT = 0.5


def _zscores(values: Sequence[float]) -> npt.NDArray[np.float64]:
    a = np.asarray(values, dtype=np.float64)
    sd = float(a.std()) if a.size else 0.0
    if sd < 1e-12:
        return np.zeros_like(a)
    out: npt.NDArray[np.float64] = (a - a.mean()) / sd
    return out


class SentenceReranker:
    """The default reranker: sentence-level dense max-sim (and the feature model) fused with the
    retriever's score.

    Every candidate chunk is split into sentences (:func:`embedding_sentences`); the question
    is embedded as a query and each sentence as a passage with the index's own encoder, and the
    chunk's evidence is its best sentence's cosine similarity. A chunk that mentions the
    question's topic in passing but answers something else scores low; one whose single
    sentence answers it scores high, however long the chunk around it. The rerank score is::

        z(retriever score) + weight · z(best sentence similarity) + feature_weight · z(features)

    with ``z`` standardised over the candidates of the question (the retriever score is the
    ``fused`` score of hybrid hits, else the hit's score; ``features`` the score of
    :class:`FeatureReranker`'s linear model, which adds lexical evidence: query-term coverage
    of the title, the best sentence and the document, number match). Chunks of one document are ranked by
    the document's best score and keep the retriever's order among themselves (the ranking is
    judged by documents; which chunk answers is the answer module's job).

    Sentence vectors come from the embedding cache (``settings.embedding_cache_dir``, keyed by
    model and text): the index embeds every chunk's sentences there at build time, so reranking
    20 candidates costs one query embedding and a cache lookup. A sentence not in the cache (an
    index built with ``index_sentence_vectors`` off, or on another machine) is embedded on first
    use and cached. The per-chunk similarity is kept in the breakdown as ``scores["sentence"]``.

    :param encoder: the index's encoder (``encode_queries``/``encode_passages``, ``model_id``).
    :param cache_dir: the embedding cache directory; None: no cache (every sentence is embedded
        at query time).
    :param weight: the weight of the sentence similarity.
    :param group_by_document: rank documents by their best chunk's score (default).
    :param features: a :class:`FeatureReranker` whose model score joins the fusion; None: none.
    :param feature_weight: its weight (both weights 0: the retriever's order).
    """

    name = "sentence"

    def __init__(
        self,
        encoder: Any,
        cache_dir: Path | None = None,
        weight: float = DEFAULT_SENTENCE_WEIGHT,
        group_by_document: bool = True,
        features: FeatureReranker | None = None,
        feature_weight: float = DEFAULT_FEATURE_WEIGHT,
    ) -> None:
        if encoder is None:
            raise ValueError("the sentence reranker needs the index's encoder (open an index first)")
        for what, w in (("sentence", weight), ("feature", feature_weight)):
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"the {what} weight must be a finite number >= 0, got {w!r}")
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.weight = float(weight)
        self.group_by_document = group_by_document
        self.features = features
        self.feature_weight = float(feature_weight) if features is not None else 0.0

    @classmethod
    def for_index(
        cls,
        index: Any,
        weight: float = DEFAULT_SENTENCE_WEIGHT,
        feature_weight: float = DEFAULT_FEATURE_WEIGHT,
        feature_model: Path | None = None,
    ) -> SentenceReranker:
        settings = getattr(index, "settings", None)
        cache_dir = getattr(settings, "embedding_cache_dir", None)
        features = FeatureReranker.for_index(index, feature_model) if feature_weight > 0 else None
        return cls(getattr(index, "encoder", None), cache_dir, weight, True, features, feature_weight)

    def warm_up(self) -> None:
        """Load the encoder (a no-op when the index already did) and the feature model."""
        warm = getattr(self.encoder, "warm_up", None)
        if callable(warm):
            warm()
        if self.features is not None:
            self.features.warm_up()

    def sentence_vectors(self, sentences: Sequence[str]) -> npt.NDArray[np.float32]:
        """Passage embeddings of ``sentences`` (cached ones read, the others embedded and cached)."""
        from policyqa.index.dense import EmbeddingCache, embed_with_cache

        if not sentences:
            return np.zeros((0, int(self.encoder.dim)), dtype=np.float32)
        if self.cache_dir is None:
            return np.asarray(self.encoder.encode_passages(list(sentences)), dtype=np.float32)
        try:
            cache = EmbeddingCache(self.cache_dir, str(self.encoder.model_id))
        except (OSError, sqlite3.Error) as exc:
            # an unwritable or broken cache must not break answering: embed without it
            logger.warning(
                "embedding cache %s unusable (%s): sentences embedded without it", self.cache_dir, exc
            )
            self.cache_dir = None
            return np.asarray(self.encoder.encode_passages(list(sentences)), dtype=np.float32)
        try:
            vecs, embedded = embed_with_cache(self.encoder, list(sentences), cache, batch_size=64)
        finally:
            cache.close()
        if embedded:
            logger.debug("embedded %d sentences not in the cache", embedded)
        return np.asarray(vecs, dtype=np.float32)

    def sentence_similarities(self, query: str, hits: Sequence[Hit]) -> list[list[tuple[int, int, float]]]:
        """Per hit, its sentences (:func:`embedding_sentence_spans`, offsets into the hit's
        text) with their cosine similarity to ``query``."""
        owner: list[tuple[int, int, int]] = []
        sentences: list[str] = []
        for i, h in enumerate(hits):
            for a, b in embedding_sentence_spans(h.text):
                owner.append((i, a, b))
                sentences.append(h.text[a:b])
        out: list[list[tuple[int, int, float]]] = [[] for _ in hits]
        if not sentences:
            return out
        qvec = np.asarray(self.encoder.encode_queries([query]), dtype=np.float32)[0]
        sims = (self.sentence_vectors(sentences) @ qvec).astype(np.float64)
        for (i, a, b), sim in zip(owner, sims.tolist(), strict=True):
            out[i].append((a, b, sim))
        return out

    def similarities(self, query: str, hits: Sequence[Hit]) -> list[float]:
        """Each hit's best sentence similarity to ``query`` (0 for a hit without text)."""
        per_hit = self.sentence_similarities(query, hits)
        return [max((sim for _a, _b, sim in sents), default=0.0) for sents in per_hit]

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        _check_top_k(top_k)
        if not hits:
            return []
        sims = self.similarities(query, hits)
        base = [float(h.scores.get("fused", h.score)) for h in hits]
        total = _zscores(base) + self.weight * _zscores(sims)
        if self.features is not None and self.feature_weight > 0:
            total = total + self.feature_weight * _zscores(self.features.model_scores(query, hits))
        scores = total.tolist()
        if self.group_by_document:
            scores = document_best(hits, scores)
        marked = [replace(h, scores={**h.scores, "sentence": sim}) for h, sim in zip(hits, sims, strict=True)]
        return apply_rerank_scores(marked, scores, top_k)


# --------------------------------------------------------------------------------------------
# the feature reranker

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
            text = Path(path).read_text(encoding="utf-8")
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
    :param model_path: a model JSON written by ``policyqa.retriever.train_rerank``; None: the
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
        tokenizer: Any = None,
        bm25_index: Any = None,
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
    def for_index(cls, index: Any, model_path: Path | None = None) -> FeatureReranker:
        settings = getattr(index, "settings", None)
        return cls(
            getattr(index, "tokenizer", None),
            getattr(index, "bm25", None),
            model_path,
            getattr(settings, "candidate_depth", None),
        )

    def warm_up(self) -> None:
        """Load the weights, the IDF table and the tokenizer."""
        if self._model is None:
            self._model = FeatureModel.load(self.model_path)
        self.stats.idf("")
        warm = getattr(self.tokenizer, "warm_up", None)
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
        _check_top_k(top_k)
        if not hits:
            return []
        scores = self.model_scores(query, hits)
        if self.group_by_document:
            scores = document_best(hits, scores)
        return apply_rerank_scores(hits, scores, top_k)


# --------------------------------------------------------------------------------------------
# cross-encoders


def _find_int8(model_dir: Path) -> Path | None:
    for candidate in (model_dir / "onnx" / ONNX_INT8_NAME, model_dir / ONNX_INT8_NAME):
        if candidate.is_file():
            return candidate
    onnx_dir = model_dir / "onnx"
    if onnx_dir.is_dir():
        found = sorted(p for p in onnx_dir.glob("*.onnx") if "int8" in p.name or "qint8" in p.name)
        if found:
            return found[0]
    return None


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a cross-encoder.

    :param model: a sentence-transformers ``CrossEncoder`` name or local path.
    :param max_length: token limit of a (query, passage) pair; longer passages are cut.
    :param batch_size: pairs per forward pass.
    :param backend: ``auto`` runs ``onnx/model_int8.onnx`` with onnxruntime when the model is a
        local directory that has it, torch otherwise; ``onnx-int8`` requires it; ``torch``
        never uses it.
    :param with_title: prefix each passage with its document title.
    """

    name = "cross-encoder"

    def __init__(
        self,
        model: str | Path,
        *,
        max_length: int = 512,
        batch_size: int = 16,
        backend: CrossEncoderBackend = "auto",
        device: str = "cpu",
        with_title: bool = True,
    ) -> None:
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if backend not in ("auto", "torch", "onnx-int8"):
            raise ValueError(f"backend must be auto, torch or onnx-int8, got {backend!r}")
        self.model = str(model)
        self.max_length = max_length
        self.batch_size = batch_size
        self.backend = backend
        self.device = device
        self.with_title = with_title
        self._torch: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.active_backend: str | None = None

    def warm_up(self) -> None:
        """Load the model (torch or onnxruntime) and its tokenizer."""
        with self._lock:
            if self._torch is not None or self._session is not None:
                return
            local = Path(self.model)
            int8 = _find_int8(local) if local.is_dir() and self.backend != "torch" else None
            if self.backend == "onnx-int8" and int8 is None:
                raise FileNotFoundError(
                    f"no int8 ONNX export in {self.model}; create one with "
                    "policyqa.retriever.rerank.export_cross_encoder_onnx or use backend 'auto'"
                )
            if int8 is not None:
                import onnxruntime as ort
                from transformers import AutoTokenizer

                opts = ort.SessionOptions()
                opts.log_severity_level = 3
                self._session = ort.InferenceSession(
                    str(int8), sess_options=opts, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = AutoTokenizer.from_pretrained(str(local))
                self.active_backend = "onnx-int8"
                logger.info("cross-encoder %s: onnxruntime int8 (%s)", self.model, int8.name)
                return
            from sentence_transformers import CrossEncoder

            self._torch = CrossEncoder(self.model, max_length=self.max_length, device=self.device)
            self.active_backend = "torch"
            logger.info("cross-encoder %s: torch on %s", self.model, self.device)

    def _passage(self, hit: Hit) -> str:
        if self.with_title and hit.title and not hit.text.startswith(hit.title):
            return f"{hit.title}\n{hit.text}"
        return hit.text

    def predict(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Relevance scores of (query, passage) pairs (higher is more relevant)."""
        self.warm_up()
        if not pairs:
            return []
        if self._session is not None:
            return self._predict_onnx(pairs)
        raw = self._torch.predict(
            [list(p) for p in pairs], batch_size=self.batch_size, show_progress_bar=False
        )
        arr = np.asarray(raw, dtype=np.float64)
        if arr.ndim == 2:  # several labels: the last one is "relevant"
            arr = arr[:, -1]
        return [float(v) for v in arr.reshape(-1)]

    def _predict_onnx(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        names = {i.name for i in self._session.get_inputs()}
        out: list[float] = []
        for i in range(0, len(pairs), self.batch_size):
            batch = pairs[i : i + self.batch_size]
            enc = self._tokenizer(
                [p[0] for p in batch],
                [p[1] for p in batch],
                padding=True,
                truncation="longest_first",
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in names}
            logits = np.asarray(self._session.run(None, feed)[0], dtype=np.float64)
            if logits.ndim == 2 and logits.shape[1] > 1:
                logits = logits[:, -1]
            scores = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))  # as CrossEncoder's default Sigmoid
            out.extend(float(v) for v in scores)
        return out

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        _check_top_k(top_k)
        if not hits:
            return []
        scores = self.predict([(query, self._passage(h)) for h in hits])
        return apply_rerank_scores(hits, scores, top_k)


def export_cross_encoder_onnx(model_dir: Path, *, quantize: bool = True, opset: int = 17) -> Path:
    """Export a local cross-encoder (a ``*ForSequenceClassification`` directory) to ONNX.

    Writes ``model_dir/onnx/model.onnx`` and, with ``quantize``, the dynamically quantised
    ``model_dir/onnx/model_int8.onnx`` that :class:`CrossEncoderReranker` picks up; returns the
    path of the file it would use.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    out_dir = model_dir / "onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    sample = tokenizer(["问题"], ["段落文本"], return_tensors="pt")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    axes = {k: {0: "batch", 1: "seq"} for k in names}
    axes["logits"] = {0: "batch"}
    fp32 = out_dir / ONNX_FP32_NAME

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args, strict=True))).logits

    # the legacy TorchScript exporter (no onnxscript needed) warns that it is legacy: not ours
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Wrapper(model),
            tuple(sample[k] for k in names),
            str(fp32),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    if not quantize:
        return fp32
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = out_dir / ONNX_INT8_NAME
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    return int8
