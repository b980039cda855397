"""Retrievers: BM25, dense and hybrid search behind one protocol."""

from .base import Filters, Hit, Retriever
from .bm25 import BM25Retriever
from .dense import DenseRetriever
from .hybrid import RRF_K, FusionMode, HybridRetriever

__all__ = [
    "RRF_K",
    "BM25Retriever",
    "DenseRetriever",
    "Filters",
    "FusionMode",
    "Hit",
    "HybridRetriever",
    "Retriever",
]
