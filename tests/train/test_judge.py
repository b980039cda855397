"""The one way fitted numbers are judged: document-level RR@10 and the choice by the worst benchmark."""

from __future__ import annotations

import pytest

from policyqa.train.judge import by_worst_margin, doc_rr


def test_doc_rr_ranks_documents_by_their_best_chunk() -> None:
    docs = ["a", "b", "a", "c"]
    # documents by best chunk: a (0.9), c (0.8), b (0.1) → gold c at 2
    assert doc_rr(docs, [0.5, 0.1, 0.9, 0.8], {"c"}) == 0.5
    # a tie goes to the earlier candidate: b (0.7, 2nd) before c (0.7, 4th) → gold c at 3
    assert doc_rr(docs, [0.9, 0.7, 0.0, 0.7], ("c",)) == pytest.approx(1 / 3)
    assert doc_rr(docs, [0.5, 0.1, 0.9, 0.8], {"z"}) == 0.0
    # only the top 10 documents count
    many = [f"d{i}" for i in range(12)]
    assert doc_rr(many, [-float(i) for i in range(12)], {"d9"}) == 0.1
    assert doc_rr(many, [-float(i) for i in range(12)], {"d10"}) == 0.0


def test_the_choice_is_by_the_worst_margin_then_the_mean_then_the_first() -> None:
    margins = {
        "x": {"A": 0.02, "B": -0.01},  # worst -0.01
        "y": {"A": 0.00, "B": 0.01},  # worst 0.00, mean 0.005
        "z": {"A": 0.03, "B": 0.00},  # worst 0.00, mean 0.015
        "w": {"A": 0.00, "B": 0.03},  # worst 0.00, mean 0.015: as good as z, listed later
    }
    assert by_worst_margin(["x", "y", "z", "w"], margins.__getitem__) == "z"
    assert by_worst_margin(["x", "y"], margins.__getitem__) == "y"
    # differences below float noise are ties
    assert by_worst_margin([1, 2], lambda c: {"A": 0.1 + 0.2 if c == 2 else 0.3}) == 1
    with pytest.raises(ValueError, match="no candidates"):
        by_worst_margin([], margins.__getitem__)
