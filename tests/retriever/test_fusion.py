"""The hybrid fusion, pinned by numbers worked out by hand (see each test's comment)."""

from __future__ import annotations

import numpy as np
import pytest

from policyqa.retriever.fusion import (
    FusionMode,
    FusionOptions,
    check_fusion_options,
    fuse,
    minmax,
    top_order,
    zscore,
)

LEXICAL = np.array([3.0, 1.0, 2.0], dtype=np.float32)
SEMANTIC = np.array([0.5, 0.5, 0.8], dtype=np.float32)
DOCUMENT = np.array([10.0, 0.0, 10.0], dtype=np.float32)
LEX_RANK = np.array([1, 0, 2], dtype=np.int64)  # candidate 1 is not in the BM25 list
SEM_RANK = np.array([2, 1, 0], dtype=np.int64)  # candidate 2 is not in the dense list


def test_zscore_with_document_context() -> None:
    # lexical: mean 2, population std sqrt(2/3) = 0.8164966 → z = [1.2247449, -1.2247449, 0]
    # semantic: mean 0.6, std sqrt(0.02) = 0.1414214 → z = [-0.7071068, -0.7071068, 1.4142136]
    # chunk part, w = 0.5: [0.2588190, -0.9659258, 0.7071068]
    # document: mean 6.6667, std 4.7140452 → z = [0.7071068, -1.4142136, 0.7071068]
    # c = 1/3: 2/3 · chunk + 1/3 · document = [0.4082483, -1.1153550, 0.7071068]
    fused = fuse(
        LEXICAL,
        SEMANTIC,
        LEX_RANK,
        SEM_RANK,
        DOCUMENT,
        FusionOptions(FusionMode.ZSCORE, bm25_weight=0.5, doc_weight=1 / 3),
    )
    np.testing.assert_allclose(fused, [0.4082483, -1.1153550, 0.7071068], atol=1e-6)
    assert top_order(fused, np.arange(3), 3).tolist() == [2, 0, 1]


def test_zscore_without_document_context() -> None:
    # the chunk part alone: [0.2588190, -0.9659258, 0.7071068]
    for document, weight in ((None, 1 / 3), (DOCUMENT, 0.0)):
        fused = fuse(
            LEXICAL, SEMANTIC, LEX_RANK, SEM_RANK, document, FusionOptions(bm25_weight=0.5, doc_weight=weight)
        )
        np.testing.assert_allclose(fused, [0.2588190, -0.9659258, 0.7071068], atol=1e-6)


def test_a_document_of_one_chunk_is_its_own_context() -> None:
    # chunk part, w = 0.5: [0.2588190, -0.9659258, 0.7071068]; document z: [0.7071068, -1.4142136, 0.7071068]
    # candidate 1's document has one chunk: its context is its chunk part, so it keeps -0.9659258;
    # the others: 2/3 · chunk + 1/3 · document = [0.4082483, ·, 0.7071068]
    options = FusionOptions(bm25_weight=0.5, doc_weight=1 / 3)
    chunks = np.array([3, 1, 2], dtype=np.int64)
    fused = fuse(LEXICAL, SEMANTIC, LEX_RANK, SEM_RANK, DOCUMENT, options, chunks)
    np.testing.assert_allclose(fused, [0.4082483, -0.9659258, 0.7071068], atol=1e-6)
    # every document of one chunk: the chunk part alone, whatever the document weight
    ones = np.ones(3, dtype=np.int64)
    fused = fuse(LEXICAL, SEMANTIC, LEX_RANK, SEM_RANK, DOCUMENT, options, ones)
    np.testing.assert_allclose(fused, [0.2588190, -0.9659258, 0.7071068], atol=1e-6)


def test_rrf_sums_the_lists_that_hold_the_chunk() -> None:
    # k = 60, w = 0.5: 0.5/61 + 0.5/62 = 0.01626124; 0.5/61 = 0.00819672; 0.5/62 = 0.00806452
    # (the document score is never part of RRF)
    rrf = FusionOptions(FusionMode.RRF, bm25_weight=0.5, rrf_k=60)
    fused = fuse(LEXICAL, SEMANTIC, LEX_RANK, SEM_RANK, DOCUMENT, rrf)
    np.testing.assert_allclose(fused, [0.01626124, 0.00819672, 0.00806452], atol=1e-8)
    # w = 0.8, k = 10: 0.8/11 + 0.2/12 = 0.08939394; 0.2/11 = 0.01818182; 0.8/12 = 0.06666667
    fused = fuse(
        LEXICAL, SEMANTIC, LEX_RANK, SEM_RANK, None, FusionOptions(FusionMode.RRF, bm25_weight=0.8, rrf_k=10)
    )
    np.testing.assert_allclose(fused, [0.08939394, 0.01818182, 0.06666667], atol=1e-8)


def test_weighted_uses_min_max() -> None:
    # lexical → [1, 0, 0.5]; semantic → [0, 0, 1]; w = 0.25: [0.25, 0, 0.875]
    # document → [1, 0, 1]; c = 0.5: [0.625, 0, 0.9375]
    fused = fuse(
        LEXICAL,
        SEMANTIC,
        LEX_RANK,
        SEM_RANK,
        DOCUMENT,
        FusionOptions(FusionMode.WEIGHTED, bm25_weight=0.25, doc_weight=0.5),
    )
    np.testing.assert_allclose(fused, [0.625, 0.0, 0.9375], atol=1e-6)


def test_constant_signals() -> None:
    flat = np.array([2.0, 2.0], dtype=np.float32)
    assert zscore(flat).tolist() == [0.0, 0.0]
    assert minmax(flat).tolist() == [1.0, 1.0] and minmax(flat * 0).tolist() == [0.0, 0.0]
    assert zscore(np.zeros(0, dtype=np.float32)).size == 0 and minmax(np.zeros(0, dtype=np.float32)).size == 0


def test_ties_go_to_index_order_and_the_cut_is_top_k() -> None:
    fused = np.array([1.0, 2.0, 2.0, 0.5])
    assert top_order(fused, np.array([5, 9, 3, 1]), 3).tolist() == [2, 1, 0]
    assert top_order(fused, np.array([5, 9, 3, 1]), 1).tolist() == [2]


def test_modes_and_options_are_checked() -> None:
    assert FusionMode.from_str(" RRF ") is FusionMode.RRF
    with pytest.raises(ValueError, match="choose one of: zscore, rrf, weighted"):
        FusionMode.from_str("sum")
    for args, name in (
        ((1.5, 0.3, 60, 10), "bm25_weight"),
        ((0.5, -0.1, 60, 10), "doc_weight"),
        ((0.5, 0.3, 0, 10), "rrf_k"),
        ((0.5, 0.3, 60, 0), "candidate_depth"),
    ):
        with pytest.raises(ValueError, match=name):
            check_fusion_options(*args)
    with pytest.raises(ValueError, match="candidate_depth"):
        FusionOptions(candidate_depth=0)
    assert FusionOptions(mode="rrf").mode is FusionMode.RRF  # type: ignore[arg-type]
