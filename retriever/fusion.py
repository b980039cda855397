"""Hybrid fusion as a pure function: per-candidate scores and ranks in, fused scores out.

Both backends' hybrid retrievers gather the same things for the union of their BM25 and dense
candidates: each candidate's BM25 score and dense cosine (computed exactly for every candidate,
not imputed), its rank in each candidate list (0 when it is not in the list), and, as document
context, the BM25 score of its whole document. :func:`fuse` turns those into one score per
candidate and :func:`top_order` ranks them, ties broken by index order. Three modes
(:class:`FusionMode`):

``zscore`` (default)
    A convex combination of z-normalised scores: each signal is standardised over the union of
    candidates (``(s - mean) / std``), so a retriever whose top candidates stand out from the rest
    weighs more for that query than one whose scores are flat. With ``bm25_weight = w`` and
    ``doc_weight = c`` the chunk's BM25, its cosine and its document's BM25 weigh
    ``(1 - c) · w``, ``(1 - c) · (1 - w)`` and ``c``. Questions often name the document's subject
    (a city, an agency, a programme) while the answering paragraph does not repeat it, so the
    whole-document score lets the right document's paragraphs rise. A document of one chunk has
    no context beyond that chunk: its document term is the chunk's own combined score, so its
    BM25 is not counted twice (collections of short passages, such as a service knowledge base,
    would otherwise be ranked by BM25 alone at ``c`` + ``(1 - c) · w``).
``rrf``
    Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009):
    ``Σ_s w_s / (k + rank_s)`` over the lists that hold the chunk (ranks start at 1), with
    ``w_bm25 = bm25_weight`` and ``w_dense = 1 - bm25_weight``; ``k`` defaults to 60, the
    paper's constant, also Elasticsearch's and LangChain's. No document context.
``weighted``
    As ``zscore``, with min-max instead of z normalisation.

``tests/retriever/test_fusion.py`` pins each mode with numbers worked out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_FUSION",
    "RRF_K",
    "FusionMode",
    "FusionOptions",
    "check_fusion_options",
    "fuse",
    "minmax",
    "top_order",
    "zscore",
]

_Float = TypeVar("_Float", np.float32, np.float64)

#: Default RRF constant (Cormack, Clarke & Büttcher, SIGIR 2009).
RRF_K = 60


class FusionMode(StrEnum):
    """How the hybrid retriever fuses its signals (see the module docstring)."""

    ZSCORE = "zscore"
    RRF = "rrf"
    WEIGHTED = "weighted"

    @classmethod
    def from_str(cls, value: str) -> FusionMode:
        try:
            return cls(value.strip().lower())
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown fusion mode {value!r}; choose one of: {allowed}") from None


def check_fusion_options(bm25_weight: float, doc_weight: float, rrf_k: int, candidate_depth: int) -> None:
    """Raise ValueError naming the first fusion option out of range (every backend's check)."""
    if not 0.0 <= bm25_weight <= 1.0:
        raise ValueError(f"bm25_weight must be in [0, 1], got {bm25_weight}")
    if not 0.0 <= doc_weight <= 1.0:
        raise ValueError(f"doc_weight must be in [0, 1], got {doc_weight}")
    if rrf_k < 1:
        raise ValueError(f"rrf_k must be >= 1, got {rrf_k}")
    if candidate_depth < 1:
        raise ValueError(f"candidate_depth must be >= 1, got {candidate_depth}")


@dataclass(frozen=True, slots=True)
class FusionOptions:
    """How a hybrid retriever fuses (checked when made): the mode, the lexical share of the chunk
    signals, the document context's share, the RRF constant, and how many candidates each
    retriever contributes."""

    mode: FusionMode = FusionMode.ZSCORE
    bm25_weight: float = 0.4
    doc_weight: float = 1 / 3
    rrf_k: int = RRF_K
    candidate_depth: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.mode, FusionMode):
            object.__setattr__(self, "mode", FusionMode.from_str(str(self.mode)))
        check_fusion_options(self.bm25_weight, self.doc_weight, self.rrf_k, self.candidate_depth)


#: The options a hybrid retriever uses when given none.
DEFAULT_FUSION = FusionOptions()


def zscore(x: npt.NDArray[_Float]) -> npt.NDArray[_Float]:
    """``(x - mean) / std`` (population std), in ``x``'s precision; all zeros when ``x`` is
    constant. Every standardisation of scores over candidates (fusion, rerankers) is this one."""
    if x.size == 0:
        return x
    std = float(x.std())
    if std <= 1e-12:
        return np.zeros_like(x)
    return ((x - float(x.mean())) / std).astype(x.dtype)


def minmax(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``(x - min) / (max - min)``; all ones (positive) or zeros when ``x`` is constant."""
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12:
        return np.ones_like(x) if hi > 0 else np.zeros_like(x)
    return ((x - lo) / (hi - lo)).astype(np.float32)


def fuse(
    lexical: npt.NDArray[np.float32],
    semantic: npt.NDArray[np.float32],
    lexical_rank: npt.NDArray[np.int64],
    semantic_rank: npt.NDArray[np.int64],
    document: npt.NDArray[np.float32] | None = None,
    options: FusionOptions = DEFAULT_FUSION,
    doc_chunks: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.float64]:
    """The fused score of every candidate (see the module docstring).

    :param lexical: each candidate's BM25 score.
    :param semantic: each candidate's dense cosine.
    :param lexical_rank: its 1-based rank in the BM25 candidate list, 0 when not in it.
    :param semantic_rank: the same in the dense list.
    :param document: the BM25 score of each candidate's whole document; None (or a
        ``doc_weight`` of 0) leaves document context out. ``rrf`` never uses it.
    :param options: the mode and the weights.
    :param doc_chunks: how many chunks each candidate's document has; where it is 1, the
        document term is the candidate's own chunk score (None: every document counts as several).
    """
    mode, w, doc_weight, rrf_k = options.mode, options.bm25_weight, options.doc_weight, options.rrf_k
    if mode is FusionMode.RRF:
        lex = np.where(lexical_rank > 0, w / (rrf_k + lexical_rank), 0.0)
        sem = np.where(semantic_rank > 0, (1 - w) / (rrf_k + semantic_rank), 0.0)
        return (lex + sem).astype(np.float64)
    norm = zscore if mode is FusionMode.ZSCORE else minmax
    fused = (w * norm(lexical) + (1 - w) * norm(semantic)).astype(np.float64)
    if document is not None and doc_weight > 0:
        context = norm(document).astype(np.float64)
        if doc_chunks is not None:
            context = np.where(doc_chunks == 1, fused, context)
        fused = (1 - doc_weight) * fused + doc_weight * context
    return fused


def top_order(
    fused: npt.NDArray[np.float64], index_order: npt.NDArray[np.int64], top_k: int
) -> npt.NDArray[np.int64]:
    """Positions of the ``top_k`` best candidates: by fused score, ties by index order."""
    order: npt.NDArray[np.int64] = np.lexsort((index_order, -fused))[:top_k]
    return order
