"""One retriever factory for both backends: an open index and a mode → a :class:`Retriever`.

``bm25`` and ``dense`` rank chunks by one signal; ``hybrid`` fuses them (and the whole
document's BM25) with :func:`policyqa.retriever.fusion.fuse`, by the settings' fusion mode and
weights unless they are given. The embedded index's BM25 and dense retrievers (and their cache of
filter masks) are made once per open index and shared by every retriever asked of it.
"""

from __future__ import annotations

import threading
from weakref import WeakKeyDictionary

from policyqa.index.base import OpenIndex
from policyqa.index.embedded import EmbeddedIndex
from policyqa.index.milvus import MilvusIndex

from .base import Retriever
from .bm25 import BM25Retriever
from .common import MaskCache
from .dense import DenseRetriever
from .fusion import FusionMode, FusionOptions
from .hybrid import HybridRetriever
from .milvus import MilvusBM25Retriever, MilvusDenseRetriever, MilvusHybridRetriever

__all__ = ["SEARCH_MODES", "retriever_for"]

#: The search modes, in the order they are offered.
SEARCH_MODES = ("bm25", "dense", "hybrid")

_embedded: WeakKeyDictionary[EmbeddedIndex, tuple[BM25Retriever, DenseRetriever]] = WeakKeyDictionary()
_lock = threading.Lock()


def _embedded_retrievers(index: EmbeddedIndex) -> tuple[BM25Retriever, DenseRetriever]:
    with _lock:
        pair = _embedded.get(index)
        if pair is None:
            masks = MaskCache(index.store)
            pair = (
                BM25Retriever(index.store, index.bm25, index.tokenizer, masks, doc_index=index.doc_bm25),
                DenseRetriever(index.store, index.dense, index.encoder, masks),
            )
            _embedded[index] = pair
        return pair


def retriever_for(
    index: OpenIndex,
    mode: str = "hybrid",
    *,
    fusion: str | None = None,
    bm25_weight: float | None = None,
    doc_weight: float | None = None,
    rrf_k: int | None = None,
    candidate_depth: int | None = None,
) -> Retriever:
    """The retriever for ``mode`` (bm25, dense or hybrid) over ``index``, either backend; the
    hybrid options default to the index's settings. An unknown mode raises ``ValueError``."""
    if mode not in SEARCH_MODES:
        raise ValueError(f"unknown search mode {mode!r}; choose one of: {', '.join(SEARCH_MODES)}")
    s = index.settings
    options = FusionOptions(
        mode=FusionMode.from_str(fusion or s.fusion),
        bm25_weight=s.bm25_weight if bm25_weight is None else bm25_weight,
        doc_weight=s.doc_context_weight if doc_weight is None else doc_weight,
        rrf_k=rrf_k or s.rrf_k,
        candidate_depth=candidate_depth or s.candidate_depth,
    )
    if isinstance(index, MilvusIndex):
        index.load()
        if mode == "bm25":
            return MilvusBM25Retriever(index)
        if mode == "dense":
            return MilvusDenseRetriever(index)
        return MilvusHybridRetriever(index, options)
    if isinstance(index, EmbeddedIndex):
        bm25, dense = _embedded_retrievers(index)
        if mode == "bm25":
            return bm25
        if mode == "dense":
            return dense
        return HybridRetriever(bm25, dense, options)
    raise TypeError(f"no retrievers for an index of type {type(index).__name__}")
