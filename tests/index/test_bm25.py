"""BM25 scores agree with rank-bm25's BM25Okapi on the fixture corpus."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from policyqa.index.bm25 import BM25Index, top_rows
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


# -- segments: updates give exactly the scores of a full rebuild ---------------------------------
def _queries() -> list[list[str]]:
    tok = ChineseTokenizer()
    return [tok.tokenize(q) for _, q, _ in fixture_queries()] + [["企业", "企业", "税"]]


@pytest.mark.parametrize("method", ["okapi", "lucene"])
def test_extend_equals_a_rebuild(corpus_tokens: list[list[str]], method: str) -> None:
    grown = BM25Index(method=method, segment_rows=3)
    grown.build(corpus_tokens[:4])
    grown.extend(corpus_tokens[4:7])
    grown.extend(corpus_tokens[7:])
    assert grown.n_segments > 2 and grown.size == len(corpus_tokens)
    full = BM25Index(method=method)
    full.build(corpus_tokens)
    for q in _queries():
        np.testing.assert_allclose(grown.scores(q), full.scores(q), rtol=1e-6, atol=1e-7)


def test_drop_rows_equals_a_rebuild(corpus_tokens: list[list[str]]) -> None:
    idx = BM25Index(segment_rows=4)
    idx.build(corpus_tokens)
    keep = np.ones(len(corpus_tokens), dtype=bool)
    keep[[0, 5, len(corpus_tokens) - 1]] = False  # first segment, a middle one, the last row
    idx.drop_rows(keep)
    full = BM25Index()
    full.build([t for t, k in zip(corpus_tokens, keep, strict=True) if k])
    ref = BM25Okapi([t for t, k in zip(corpus_tokens, keep, strict=True) if k])
    for q in _queries():
        np.testing.assert_allclose(idx.scores(q), full.scores(q), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(idx.scores(q), ref.get_scores(q), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="keep mask"):
        idx.drop_rows(np.ones(3, dtype=bool))


def test_small_segments_are_merged(corpus_tokens: list[list[str]]) -> None:
    idx = BM25Index(segment_rows=64)
    idx.build(corpus_tokens[:2])
    for toks in corpus_tokens[2:]:
        idx.extend([toks])
    assert idx.n_segments <= 13
    full = BM25Index()
    full.build(corpus_tokens)
    for q in _queries():
        np.testing.assert_allclose(idx.scores(q), full.scores(q), rtol=1e-6, atol=1e-7)


def test_saved_segments_are_linked_into_the_next_save(tmp_path, corpus_tokens: list[list[str]]) -> None:  # type: ignore[no-untyped-def]
    idx = BM25Index(segment_rows=5)
    idx.build(corpus_tokens[:10])
    idx.save(tmp_path / "gen1")
    loaded = BM25Index.load(tmp_path / "gen1", mmap=True)
    loaded.extend(corpus_tokens[10:])
    loaded.save(tmp_path / "gen2")
    first = tmp_path / "gen1" / "seg-0000" / "rows.npy"
    again = tmp_path / "gen2" / "seg-0000" / "rows.npy"
    assert first.stat().st_ino == again.stat().st_ino  # not rewritten
    reread = BM25Index.load(tmp_path / "gen2")
    full = BM25Index()
    full.build(corpus_tokens)
    for q in _queries():
        np.testing.assert_allclose(reread.scores(q), full.scores(q), rtol=1e-6, atol=1e-7)


def test_empty_rows_and_an_empty_index() -> None:
    idx = BM25Index()
    idx.build([])
    assert idx.size == 0 and idx.scores(["a"]).shape == (0,)
    idx.extend([[], ["a", "b"], []])
    ref = BM25Okapi([[], ["a", "b"], []])
    np.testing.assert_allclose(idx.scores(["a"]), ref.get_scores(["a"]), rtol=1e-5)


# -- top-k pruning: the same answer as scoring every posting -------------------------------------
def _zipf_corpus(n_rows: int, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    vocab = [f"t{i}" for i in range(3000)]
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    lens = rng.integers(5, 60, n_rows)
    return [[vocab[j] for j in rng.choice(len(vocab), size=int(n), p=p)] for n in lens]


def test_pruned_top_k_equals_full_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    import policyqa.index.bm25 as mod

    monkeypatch.setattr(mod, "PRUNE_MIN_ROWS", 100)
    monkeypatch.setattr(mod, "PRUNE_MIN_POSTINGS", 100)
    monkeypatch.setattr(mod, "PRUNE_FIRST_POSTINGS", 300)
    corpus = _zipf_corpus(4000)
    idx = BM25Index(segment_rows=1500)
    idx.build(corpus)
    rng = np.random.default_rng(1)
    pruned = 0
    calls = 0
    real = idx._pruned_top_k

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal pruned, calls
        calls += 1
        out = real(*args, **kwargs)
        pruned += out is not None
        return out

    monkeypatch.setattr(idx, "_pruned_top_k", counting)
    mask = rng.random(idx.size) < 0.7
    for i in range(60):
        # a few common terms and a rarer one, as in real questions
        q = [f"t{j}" for j in rng.integers(0, 8, 3)] + [f"t{int(rng.integers(50, 2500))}"]
        for k, m in ((10, None), (3, mask), (40, None)):
            rows, scores = idx.top_k(q, k, m)
            ref_rows, ref_scores = top_rows(idx.scores(q), k, m)
            assert rows.tolist() == ref_rows.tolist(), (i, q, k)
            np.testing.assert_array_equal(scores, ref_scores)
    assert calls > 0 and pruned > calls // 4  # the pruning does prove most answers


def test_score_rows_is_the_full_vector_entry(corpus_tokens: list[list[str]]) -> None:
    idx = BM25Index(segment_rows=3)
    idx.build(corpus_tokens)
    rows = [len(corpus_tokens) - 1, 0, 4, 4, 2]
    for q in _queries():
        np.testing.assert_array_equal(idx.score_rows(q, rows), idx.scores(q)[rows])
    assert idx.score_rows(["稳岗"], []).shape == (0,)


def test_term_statistics_feed_the_rerankers_idf() -> None:
    from policyqa.retriever.terms import TermStats

    idx = BM25Index()
    idx.build([["稳岗", "返还"], ["稳岗", "补贴"], ["稳岗"], ["留工", "培训"]])
    vocab, df, n = idx.term_statistics()
    assert n == 4 and df[vocab["稳岗"]] == 3 and df[vocab["留工"]] == 1
    stats = TermStats(idx)
    assert stats.idf("留工") == stats.idf("返还") == stats.idf("补贴") > stats.idf("稳岗") > 0
    assert stats.idf("没有") == max(stats.idf(t) for t in vocab)  # unknown terms count as rare
    assert TermStats(None).idf("稳岗") == 1.0
