"""The question splits: by id, by gold passage, and a benchmark cut to one split."""

from __future__ import annotations

import hashlib

import pytest

from policyqa.corpus.models import Document
from policyqa.eval.datasets import Benchmark
from policyqa.eval.splits import fold_of, in_split, split_benchmark, split_key


def _bench(ids: list[str], gold: dict[str, str]) -> Benchmark:
    return Benchmark(
        name="b",
        documents=[Document(id=d, title="", text="文本") for d in sorted(set(gold.values()))],
        queries=dict.fromkeys(ids, "问题"),
        qrels={q: {gold[q]: 1} for q in ids},
        answers={q: ["文本"] for q in ids},
    )


def test_hash_split_halves_the_questions() -> None:
    ids = [f"q{i}" for i in range(200)]
    train = {q for q in ids if in_split(q, "train")}
    test = {q for q in ids if in_split(q, "test")}
    assert train.isdisjoint(test) and train | test == set(ids)
    assert 60 < len(train) < 140
    # the rule, worked by hand for one id: the first 8 hex digits of sha1 over 0xFFFFFFFF
    bucket = int(hashlib.sha1(b"q0").hexdigest()[:8], 16) / 0xFFFFFFFF
    assert in_split("q0", "train") is (bucket < 0.5) and in_split("q0", "all")
    with pytest.raises(ValueError, match="train, test or all"):
        in_split("q", "dev")
    assert {fold_of(q, 3) for q in ids} == {0, 1, 2}
    with pytest.raises(ValueError):
        fold_of("q", 0)


def test_a_split_by_query_keeps_the_corpus_and_its_questions() -> None:
    ids = [f"q{i}" for i in range(200)]
    bench = _bench(ids, dict.fromkeys(ids, "d"))
    held = split_benchmark(bench, "test")
    assert (
        set(held.queries) == {q for q in ids if in_split(q, "test")} == set(held.qrels) == set(held.answers)
    )
    assert held.documents == bench.documents
    assert held.name == "b-test" and held.corpus_name == "b"
    assert split_benchmark(bench, "all") is bench


def test_a_split_by_gold_keeps_every_passage_on_one_side() -> None:
    ids = [f"q{i}" for i in range(300)]
    gold = {q: f"d{i % 40}" for i, q in enumerate(ids)}  # 40 passages, several questions each
    bench = _bench(ids, gold)
    assert split_key(bench, "q7", "gold") == "d7" and split_key(bench, "q7", "query") == "q7"
    train = split_benchmark(bench, "train", "gold")
    test = split_benchmark(bench, "test", "gold")
    assert set(train.queries) | set(test.queries) == set(ids)
    train_docs = {gold[q] for q in train.queries}
    test_docs = {gold[q] for q in test.queries}
    assert train_docs.isdisjoint(test_docs) and train_docs and test_docs
    assert test.name == "b-test-by-gold"
    assert all(in_split(gold[q], "test") for q in test.queries)
    with pytest.raises(ValueError, match="split_by"):
        split_key(bench, "q1", "passage")  # type: ignore[arg-type]


def test_split_by_gold_uses_the_smallest_relevant_id_and_the_question_without_one() -> None:
    bench = _bench(["a", "b"], {"a": "d2", "b": "d1"})
    bench.qrels["a"] = {"d9": 1, "d2": 1, "d0": 0}  # graded 0 is not relevant
    bench.qrels["b"] = {}
    assert split_key(bench, "a", "gold") == "d2"
    assert split_key(bench, "b", "gold") == "b"
