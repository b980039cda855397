"""Metric values on hand-made runs equal values worked out by hand."""

from __future__ import annotations

import math

import ir_measures
import pytest
from ir_measures import RR, R, nDCG

from policyqa.eval.metrics import (
    GOLD_CHUNK,
    answer_metrics,
    char_f1,
    chunk_qrels,
    chunk_ranking,
    contains_answer,
    doc_ranking,
    exact_match,
    first_relevant_rank,
    latency_summary,
    normalize_answer,
    order_by_score,
    ranking_to_run,
    recall_curve,
    retrieval_metrics,
)
from policyqa.retriever.base import Hit


def hit(rank: int, doc_id: str, chunk_id: str, start: int = 0, end: int = 10) -> Hit:
    return Hit(chunk_id=chunk_id, doc_id=doc_id, score=1.0 / rank, rank=rank, text="", start=start, end=end)


# --- retrieval metrics ------------------------------------------------------------------------


def test_single_relevant_at_rank_two() -> None:
    m = retrieval_metrics({"q": {"a": 1}}, {"q": ["x", "a", "y"]}).aggregate
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert m["mrr@10"] == pytest.approx(0.5)
    assert m["recall@1"] == 0.0
    assert m["recall@5"] == 1.0
    assert m["recall@20"] == 1.0
    assert m["recall@100"] == 1.0


def test_graded_ndcg_uses_linear_gain() -> None:
    # trec_eval convention: gain = grade. DCG = 2/log2(2) + 1/log2(4) = 2.5; IDCG = 2 + 1/log2(3)
    m = retrieval_metrics({"q": {"a": 2, "b": 1, "c": 0}}, {"q": ["a", "c", "b"]}).aggregate
    assert m["ndcg@10"] == pytest.approx(2.5 / (2 + 1 / math.log2(3)))
    assert m["mrr@10"] == 1.0
    assert m["recall@1"] == pytest.approx(0.5)  # grade-0 "c" is not relevant: 2 relevant
    assert m["recall@5"] == 1.0


def test_rank_beyond_cutoffs() -> None:
    ranking = [f"x{i}" for i in range(1, 12)] + ["a"]  # relevant at rank 12
    m = retrieval_metrics({"q": {"a": 1}}, {"q": ranking}).aggregate
    assert m["ndcg@10"] == 0.0
    assert m["mrr@10"] == 0.0
    assert m["recall@5"] == 0.0
    assert m["recall@20"] == 1.0


def test_empty_and_missing_queries_score_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    result = retrieval_metrics(qrels, {"q1": ["a"], "q2": []})  # q3 missing entirely
    assert result.per_query["q1"]["mrr@10"] == 1.0
    assert result.per_query["q2"] == dict.fromkeys(result.aggregate, 0.0)
    assert result.per_query["q3"] == dict.fromkeys(result.aggregate, 0.0)
    assert result.aggregate["mrr@10"] == pytest.approx(1 / 3)
    assert result.aggregate["recall@100"] == pytest.approx(1 / 3)


def test_no_results_at_all() -> None:
    result = retrieval_metrics({"q1": {"a": 1}, "q2": {"b": 1}}, {})
    assert result.aggregate == dict.fromkeys(result.aggregate, 0.0)
    assert set(result.per_query) == {"q1", "q2"}


def test_queries_without_qrels_are_ignored() -> None:
    result = retrieval_metrics({"q1": {"a": 1}}, {"q1": ["a"], "extra": ["a"]})
    assert set(result.per_query) == {"q1"}
    assert result.aggregate["ndcg@10"] == 1.0


def test_ties_broken_by_id_then_order_kept() -> None:
    # equal scores: ascending id decides, so "a" is ranked before "b"
    assert order_by_score({"b": 1.0, "a": 1.0, "c": 2.0}) == ["c", "a", "b"]
    ranking = order_by_score({"b": 1.0, "a": 1.0})
    assert retrieval_metrics({"q": {"b": 1}}, {"q": ranking}).aggregate["mrr@10"] == pytest.approx(0.5)


def test_ranking_order_is_authoritative() -> None:
    # pytrec_eval would put "z" first on a tie of scores (docid descending); we score our order
    run = ranking_to_run({"q": ["a", "z"]})
    assert run["q"]["a"] > run["q"]["z"]
    assert retrieval_metrics({"q": {"z": 1}}, {"q": ["a", "z"]}).aggregate["mrr@10"] == pytest.approx(0.5)


def test_duplicate_items_keep_first_position() -> None:
    run = ranking_to_run({"q": ["a", "b", "a", "c"]})
    assert list(run["q"]) == ["a", "b", "c"]
    assert retrieval_metrics({"q": {"c": 1}}, {"q": ["a", "b", "a", "c"]}).aggregate[
        "mrr@10"
    ] == pytest.approx(1 / 3)


def test_agrees_with_ir_measures_aggregate() -> None:
    qrels = {"q1": {"a": 1, "b": 2}, "q2": {"c": 1}, "q3": {"d": 1}}
    rankings = {"q1": ["b", "x", "a"], "q2": ["y", "z", "w", "c"], "q3": []}
    ours = retrieval_metrics(qrels, rankings).aggregate
    theirs = ir_measures.calc_aggregate(
        [nDCG @ 10, RR @ 10, R @ 1, R @ 5], qrels, ranking_to_run({k: v for k, v in rankings.items() if v})
    )
    # both average over every qrels query, q3 (nothing returned) counting 0
    assert ours["ndcg@10"] == pytest.approx(theirs[nDCG @ 10])
    assert ours["mrr@10"] == pytest.approx(theirs[RR @ 10])
    assert ours["recall@1"] == pytest.approx(theirs[R @ 1])
    assert ours["recall@5"] == pytest.approx(theirs[R @ 5])


def test_recall_curve_matches_cutoffs() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    rankings = {"q1": ["a"], "q2": [f"x{i}" for i in range(6)] + ["b"]}  # ranks 1 and 7
    curve = recall_curve(qrels, rankings, max_k=10)
    assert curve == [0.5] * 6 + [1.0] * 4
    full = recall_curve(qrels, rankings)
    m = retrieval_metrics(qrels, rankings).aggregate
    assert len(full) == 100
    assert full[0] == m["recall@1"] and full[4] == m["recall@5"] and full[99] == m["recall@100"]


def test_unknown_metric_rejected() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        retrieval_metrics({"q": {"a": 1}}, {}, metrics=["map"])


def test_first_relevant_rank() -> None:
    assert first_relevant_rank({"a": 1}, ["x", "a"]) == 2
    assert first_relevant_rank({"a": 0}, ["a"]) is None
    assert first_relevant_rank({"a": 1}, []) is None


# --- levels ---------------------------------------------------------------------------------


def test_doc_ranking_by_best_chunk() -> None:
    hits = [hit(3, "d1", "c3"), hit(1, "d1", "c1"), hit(2, "d2", "c2"), hit(4, "d3", "c4")]
    assert doc_ranking(hits) == ["d1", "d2", "d3"]
    assert doc_ranking([]) == []


def test_chunk_ranking_credits_the_first_containing_chunk_once() -> None:
    spans = [("d1", 12, 16)]
    hits = [
        hit(1, "d2", "x", 10, 20),  # right offsets, wrong document
        hit(2, "d1", "straddle", 0, 14),  # cuts the span
        hit(3, "d1", "c1", 10, 20),  # contains it: the gold item
        hit(4, "d1", "c2", 12, 16),  # contains it too: not credited again
    ]
    ranking = chunk_ranking(hits, spans)
    assert ranking == ["x", "straddle", GOLD_CHUNK, "c2"]
    m = retrieval_metrics(chunk_qrels(["q"]), {"q": ranking}).aggregate
    assert m["mrr@10"] == pytest.approx(1 / 3)
    assert m["recall@5"] == 1.0


def test_chunk_ranking_any_reference_span_counts() -> None:
    spans = [("d1", 50, 60), ("d1", 12, 14)]
    assert chunk_ranking([hit(1, "d1", "c1", 10, 20)], spans) == [GOLD_CHUNK]


def test_chunk_ranking_without_span_falls_back_to_gold_docs() -> None:
    hits = [hit(1, "d2", "a"), hit(2, "d1", "b"), hit(3, "d1", "c")]
    assert chunk_ranking(hits, [], gold_docs=["d1"]) == ["a", GOLD_CHUNK, "c"]
    assert chunk_ranking(hits, []) == ["a", "b", "c"]


def test_latency_summary() -> None:
    assert latency_summary([float(i) for i in range(1, 101)]) == {
        "p50": pytest.approx(50.5),
        "p95": pytest.approx(95.05),
    }
    assert latency_summary([]) == {"p50": 0.0, "p95": 0.0}


# --- answers --------------------------------------------------------------------------------


def test_normalize_answer() -> None:
    assert normalize_answer("《ＡＢＣ》，１２３　你好！") == "abc123你好"
    assert normalize_answer(" 2024年3月1日。") == "2024年3月1日"
    assert normalize_answer("“增值税”、（免征）…——") == "增值税免征"
    assert normalize_answer("10%") == "10"
    assert normalize_answer("") == ""


def test_exact_match() -> None:
    assert exact_match("增值税。", ["增值税"]) == 1.0
    assert exact_match("ＡＢＣ", ["abc"]) == 1.0
    assert exact_match("增值", ["增值税"]) == 0.0
    assert exact_match("五十万元", ["50万元", "五十万元"]) == 1.0
    assert exact_match("x", []) == 0.0


def test_char_f1() -> None:
    # common 4 chars; precision 4/6, recall 4/4 -> F1 0.8
    assert char_f1("五十万元补贴", ["五十万元"]) == pytest.approx(0.8)
    # best over references
    assert char_f1("五十万元补贴", ["二十万", "五十万元"]) == pytest.approx(0.8)
    # bag of characters: repeated characters count up to their multiplicity
    assert char_f1("万万", ["万元"]) == pytest.approx(0.5)
    assert char_f1("无关", ["增值税"]) == 0.0
    assert char_f1("", ["增值税"]) == 0.0
    assert char_f1("增值税", []) == 0.0


def test_contains_answer() -> None:
    assert contains_answer("给予主办单位五十万元补贴。", ["五十万元"]) == 1.0
    assert contains_answer("给予主办单位 五十万 元补贴", ["五十万元"]) == 1.0  # spaces normalised away
    assert contains_answer("二十万元", ["五十万元"]) == 0.0
    assert contains_answer("任何文本", ["。"]) == 0.0  # a reference that normalises to nothing never matches


class Ans:
    def __init__(self, text: str, no_answer: bool = False) -> None:
        self.text = text
        self.doc_id: str | None = "d"
        self.start: int | None = 0
        self.end: int | None = len(text)
        self.no_answer = no_answer
        self.sentence = ""
        self.confidence = 0.5


def test_answer_metrics_with_no_answer_cases() -> None:
    answers = {"a1": ["增值税"], "a2": ["五十万元"], "a3": ["提前报备"], "n1": [], "n2": [], "skip": []}
    predictions = {
        "a1": Ans("增值税"),  # EM 1, F1 1, contains 1
        "a2": Ans("", no_answer=True),  # abstains on an answerable question: 0
        "a3": Ans("须提前报备"),  # EM 0, F1 = 2*(4/5)*1/(4/5+1) = 8/9, contains 1
        "n1": Ans("", no_answer=True),  # right abstention: 1
        "n2": Ans("胡说"),  # answers an unanswerable question: 0
    }
    result = answer_metrics(predictions, answers, no_answer={"n1", "n2", "n3"})  # n3: no prediction
    assert set(result.per_query) == {"a1", "a2", "a3", "n1", "n2", "n3"}  # "skip" has no gold at all
    assert result.per_query["a3"]["f1"] == pytest.approx(8 / 9)
    assert result.per_query["n3"]["no_answer_accuracy"] == 1.0  # a missing prediction abstains
    agg = result.aggregate
    assert agg["exact_match"] == pytest.approx(3 / 6)  # a1, n1, n3
    assert agg["f1"] == pytest.approx((1 + 8 / 9 + 1 + 1) / 6)
    assert agg["contains"] == pytest.approx(4 / 6)  # a1, a3, n1, n3
    assert agg["contains_span"] == pytest.approx(4 / 6)  # no snippets: the same as contains
    assert agg["no_answer_accuracy"] == pytest.approx(4 / 6)  # a1, a3 answered; n1, n3 abstained


def test_answer_metrics_empty() -> None:
    result = answer_metrics({}, {})
    assert result.aggregate == {
        "exact_match": 0.0,
        "f1": 0.0,
        "contains": 0.0,
        "contains_span": 0.0,
        "no_answer_accuracy": 0.0,
    }


class AnsWithSnippet(Ans):
    def __init__(self, text: str, sentence: str) -> None:
        super().__init__(text)
        self.sentence = sentence


def test_contains_is_measured_on_the_snippet_and_contains_span_on_the_answer() -> None:
    answers = {"q1": ["五十万元"], "q2": ["五十万元"]}
    predictions = {
        # a narrow answer inside the sentence that holds the whole reference
        "q1": AnsWithSnippet("五十万", "给予主办单位五十万元补贴。"),
        # the sentence shown does not hold it either
        "q2": AnsWithSnippet("二十万元", "给予二十万元补贴。"),
    }
    result = answer_metrics(predictions, answers)
    assert result.per_query["q1"]["contains"] == 1.0
    assert result.per_query["q1"]["contains_span"] == 0.0
    assert result.per_query["q2"]["contains"] == 0.0
    assert result.per_query["q1"]["f1"] == pytest.approx(2 * 1 * 0.75 / 1.75)
    # an answer without a snippet is its own snippet
    plain = answer_metrics({"q1": Ans("给予五十万元")}, {"q1": ["五十万元"]})
    assert plain.per_query["q1"]["contains"] == plain.per_query["q1"]["contains_span"] == 1.0
