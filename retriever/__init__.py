"""Candidates: an open index and a query → ranked passages (BM25, dense, hybrid), and reranking.

:func:`retriever_for` gives the retriever of a mode over either backend; every retriever is a
:class:`Retriever` returning :class:`Hit` s. :mod:`policyqa.retriever.fusion` is the hybrid
fusion, :mod:`policyqa.retriever.rerank` the rerank stage, :mod:`policyqa.retriever.terms` the
query-term statistics the rerankers and the answer stage read.
"""

from .base import Filters, Hit, Retriever
from .bm25 import BM25Retriever
from .dense import DenseRetriever
from .factory import SEARCH_MODES, retriever_for
from .fusion import RRF_K, FusionMode, fuse
from .hybrid import HybridRetriever

__all__ = [
    "RRF_K",
    "SEARCH_MODES",
    "BM25Retriever",
    "DenseRetriever",
    "Filters",
    "FusionMode",
    "Hit",
    "HybridRetriever",
    "Retriever",
    "fuse",
    "retriever_for",
]
