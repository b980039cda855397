"""The default reranker: each candidate's best sentence, embedded, against the question."""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from policyqa.corpus.text import embedding_sentence_spans
from policyqa.index.base import OpenIndex
from policyqa.index.dense import EmbeddingCache, PassageEncoder, embed_with_cache
from policyqa.retriever.base import Hit

from .base import apply_rerank_scores, check_rerank_top_k, document_best, zscores
from .features import FeatureReranker

__all__ = ["DEFAULT_FEATURE_WEIGHT", "DEFAULT_SENTENCE_WEIGHT", "SentenceReranker"]

logger = logging.getLogger(__name__)

#: Weights of the best sentence's similarity and of the feature model's score against the
#: retriever's score (all z-scored over the candidates). Chosen together on the ncpqa-dev train
#: half from a grid of 0…1 (``python -m policyqa.train.probe_sentence_rerank``, table in
#: ``eval/results/probe-sentence-rerank-ncpqa.md``) and scored on the test half.
DEFAULT_SENTENCE_WEIGHT = 0.5
DEFAULT_FEATURE_WEIGHT = 0.5


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
        encoder: PassageEncoder,
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
        index: OpenIndex,
        weight: float = DEFAULT_SENTENCE_WEIGHT,
        feature_weight: float = DEFAULT_FEATURE_WEIGHT,
        feature_model: Path | None = None,
    ) -> SentenceReranker:
        """The reranker over ``index``'s encoder and embedding cache (and its feature model)."""
        features = FeatureReranker.for_index(index, feature_model) if feature_weight > 0 else None
        return cls(index.encoder, index.settings.embedding_cache_dir, weight, True, features, feature_weight)

    def warm_up(self) -> None:
        """Load the encoder (a no-op when the index already did) and the feature model."""
        self.encoder.warm_up()
        if self.features is not None:
            self.features.warm_up()

    def sentence_vectors(self, sentences: Sequence[str]) -> npt.NDArray[np.float32]:
        """Passage embeddings of ``sentences`` (cached ones read, the others embedded and cached)."""

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
        check_rerank_top_k(top_k)
        if not hits:
            return []
        sims = self.similarities(query, hits)
        base = [float(h.scores.get("fused", h.score)) for h in hits]
        total = zscores(base) + self.weight * zscores(sims)
        if self.features is not None and self.feature_weight > 0:
            total = total + self.feature_weight * zscores(self.features.model_scores(query, hits))
        scores = total.tolist()
        if self.group_by_document:
            scores = document_best(hits, scores)
        marked = [replace(h, scores={**h.scores, "sentence": sim}) for h, sim in zip(hits, sims, strict=True)]
        return apply_rerank_scores(marked, scores, top_k)
