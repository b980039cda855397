"""BM25 scores agree with rank-bm25's BM25Okapi on the fixture corpus."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from policyqa.index.bm25 import BM25Index
from policyqa.index.tokenizer import ChineseTokenizer
from tests.helpers import fixture_documents, fixture_queries


@pytest.fixture(scope="module")
def corpus_tokens() -> list[list[str]]:
    tok = ChineseTokenizer()
    return [tok.tokenize(d.title + "\n" + d.text) for d in fixture_documents()]


@pytest.mark.parametrize(
    ("k1", "b", "eps"), [(1.5, 0.75, 0.25), (1.2, 0.4, 0.25), (0.9, 1.0, 0.0), (1.5, 0.75, 0.5)]
)
def test_scores_equal_rank_bm25(corpus_tokens: list[list[str]], k1: float, b: float, eps: float) -> None:
    ours = BM25Index(k1=k1, b=b, epsilon=eps)
    ours.build(corpus_tokens)
    ref = BM25Okapi(corpus_tokens, k1=k1, b=b, epsilon=eps)
    tok = ChineseTokenizer()
    queries = [q for _, q, _ in fixture_queries()] + ["企业 企业 税", "没有这个词汇"]
    for q in queries:
        qt = tok.tokenize(q)
        np.testing.assert_allclose(ours.scores(qt), ref.get_scores(qt), rtol=1e-5, atol=1e-6)


def test_top_k_order_ties_and_mask() -> None:
    idx = BM25Index()
    idx.build([["a", "b"], ["a", "b"], ["c"], ["a"], ["d"], ["e"], ["f"]])
    rows, scores = idx.top_k(["a"], 10)
    # rows 0 and 1 tie: the lower row comes first; rows without the term are left out
    assert rows.tolist() == [3, 0, 1]  # shortest chunk first, then the tie in row order
    assert list(scores) == sorted(scores, reverse=True)
    mask = np.array([False, True, True, False, True, True, True])
    rows, _ = idx.top_k(["a"], 5, mask=mask)
    assert rows.tolist() == [1]
    assert idx.top_k(["zzz"], 5)[0].size == 0


def test_save_load_round_trip(tmp_path, corpus_tokens: list[list[str]]) -> None:  # type: ignore[no-untyped-def]
    idx = BM25Index(k1=1.2, b=0.7)
    idx.build(corpus_tokens)
    idx.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25", mmap=True)
    q = ChineseTokenizer().tokenize("稳岗返还比例")
    np.testing.assert_array_equal(idx.scores(q), again.scores(q))
    assert again.k1 == 1.2 and again.size == len(corpus_tokens)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="method"):
        BM25Index(method="okapi-plus")
    with pytest.raises(ValueError, match="k1"):
        BM25Index(k1=0)


def test_common_terms_keep_a_positive_weight() -> None:
    # "a" is in 4 of 5 chunks: Okapi's idf is negative and rank-bm25 floors it at epsilon * mean idf
    idx = BM25Index()
    corpus = [["a", "b"], ["a"], ["a", "c"], ["a", "d"], ["e"]]
    idx.build(corpus)
    ref = BM25Okapi(corpus)
    np.testing.assert_allclose(idx.scores(["a"]), ref.get_scores(["a"]), rtol=1e-5)
    assert idx.top_k(["a"], 3)[0].size == 3


def test_lucene_variant_is_available() -> None:
    idx = BM25Index(method="lucene")
    idx.build([["a", "b"], ["c"]])
    assert idx.scores(["a"])[0] > 0


def test_a_single_chunk_corpus_still_matches() -> None:
    idx = BM25Index()
    idx.build([["稳岗", "返还", "比例"]])
    rows, scores = idx.top_k(["稳岗"], 5)
    assert rows.tolist() == [0] and scores[0] > 0
