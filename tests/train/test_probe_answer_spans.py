"""The answer span probes: cross-validation, setting variants, learning curve, minimum-Bayes-risk choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policyqa.eval.splits import fold_of
from policyqa.train.answer import fit_boosters
from policyqa.train.probe_answer_spans import (
    MBR_TEMPERATURES,
    VARIANTS,
    cross_validated_scores,
    main,
    probe,
    top_span,
)
from tests.helpers import learnable_span_groups


def test_cross_validated_scores_never_score_a_question_with_a_model_that_saw_it() -> None:
    pytest.importorskip("lightgbm")
    from policyqa.answer.selector import FEATURE_SETS

    groups = learnable_span_groups()
    params = {"min_data_in_leaf": 5, "n_estimators": 20}
    scores = cross_validated_scores(groups, 2, params=params, bags=1)
    assert set(scores) == {g.query_id for g in groups}
    # fold 0 is scored by the boosters fitted on fold 1 alone
    (booster,) = fit_boosters(
        [g for g in groups if fold_of(g.query_id, 2) == 1], FEATURE_SETS[-1], params=params, bags=1
    )
    for g in groups:
        if fold_of(g.query_id, 2) == 0:
            np.testing.assert_allclose(scores[g.query_id], booster.predict(g.features, num_threads=1))
    assert top_span(groups, scores) == {"f1": 0.9, "contains": 1.0}
    assert top_span(groups, {}) == {"f1": 0.0, "contains": 0.0}  # unscored questions count 0
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_validated_scores(groups, 1)


def test_probe_reports_every_probe() -> None:
    pytest.importorskip("lightgbm")
    out = probe(learnable_span_groups(240), bags=1)  # enough rows for the shipped 50 per leaf
    assert out["questions"] == 240 and out["candidates_mean"] == 6.0
    assert out["oracle"] == {"f1": 0.9, "contains": 1.0}
    assert [v["variant"] for v in out["variants"]] == [v[0] for v in VARIANTS]
    assert [c["folds"] for c in out["learning_curve"]] == [2, 4, 8]
    assert [m["temperature"] for m in out["mbr"]] == [None, *MBR_TEMPERATURES]
    # the signal is learnable; disjoint spans make every temperature choose the best-scored one
    assert out["variants"][0]["f1"] == 0.9
    assert all(m["f1"] == 0.9 for m in out["mbr"])
    with pytest.raises(ValueError, match="position"):
        probe(learnable_span_groups(positions=False), bags=1)


def test_cli_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "missing"), "--bags", "0"])
    assert exc.value.code == 2 and "--bags" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "missing")])
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err
