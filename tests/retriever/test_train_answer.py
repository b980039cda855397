"""The span model trainer: listwise fit, calibration and the threshold's reject limit."""

from __future__ import annotations

import numpy as np
import pytest

from policyqa.retriever.answer import SpanModel
from policyqa.retriever.spans import SPAN_FEATURES
from policyqa.retriever.train_answer import SpanGroup, fit_listwise, fit_span_model, top_span_scores

GOOD = SPAN_FEATURES.index("cov_context")


def _groups(n: int = 24, seed: int = 0) -> list[SpanGroup]:
    """Questions whose right span has the highest ``cov_context`` (plus noise elsewhere)."""
    rng = np.random.default_rng(seed)
    out: list[SpanGroup] = []
    for q in range(n):
        x = rng.normal(size=(6, len(SPAN_FEATURES)))
        right = q % 6
        x[:, GOOD] = 0.0
        x[right, GOOD] = 2.0
        f1 = np.full(6, 0.1)
        f1[right] = 0.9
        co = (f1 > 0.5).astype(np.float64)
        wrong = rng.normal(size=(5, len(SPAN_FEATURES)))
        wrong[:, GOOD] = 0.0
        out.append(SpanGroup(f"q{q}", x, f1, co, co.copy(), wrong))
    return out


def test_listwise_fit_learns_the_signal() -> None:
    groups = _groups()
    w, mean, std = fit_listwise(groups, lam=1.0, tau=0.2)
    assert int(np.argmax(np.abs(w))) == GOOD and w[GOOD] > 0
    scores = top_span_scores(_groups(seed=1), SpanModel(w, mean, std, (1.0, 0.0, 0.0), 0.0))
    assert scores == {"f1": pytest.approx(0.9), "contains": 1.0, "overlap": 1.0, "n": 24.0}


def test_fit_span_model_chooses_by_cv_and_limits_rejects() -> None:
    groups = _groups()
    model = fit_span_model(groups, info={"trained_on": ["toy"]}, max_reject=0.0)
    assert model.info["trained_on"] == ["toy"] and "cv" in model.info
    assert (model.info["lam"], model.info["tau"]) in {
        tuple(float(v) for v in k.replace("lam=", "").replace("tau=", "").split(","))
        for k in model.info["cv"]
    }
    # max_reject=0: no answerable training question is rejected
    assert model.info["answerable_kept_at_threshold"] == 1.0
    again = SpanModel.from_json(model.to_json())
    assert again.min_confidence == model.min_confidence


def _boosted_groups(n: int = 60, seed: int = 0) -> list[SpanGroup]:
    """Like :func:`_groups`, over the full feature set; the right span has the best reader
    start logit (``reader_rel_start`` 0, the others below)."""
    from policyqa.retriever.answer import FEATURE_SETS

    full = FEATURE_SETS[-1]
    col = full.index("reader_rel_start")
    rng = np.random.default_rng(seed)
    out: list[SpanGroup] = []
    for q in range(n):
        x = rng.normal(size=(6, len(full)))
        right = q % 6
        x[:, col] = -3.0
        x[right, col] = 0.0
        f1 = np.full(6, 0.1)
        f1[right] = 0.9
        co = (f1 > 0.5).astype(np.float64)
        wrong = rng.normal(size=(5, len(full)))
        wrong[:, col] = -3.0
        out.append(SpanGroup(f"q{q}", x, f1, co, co.copy(), wrong))
    return out


def test_boosted_fit_learns_the_signal_and_round_trips() -> None:
    pytest.importorskip("lightgbm")
    from policyqa.retriever.answer import FEATURE_SETS
    from policyqa.retriever.train_answer import fit_boosted_span_model

    full = FEATURE_SETS[-1]
    model = fit_boosted_span_model(
        _boosted_groups(),
        full,
        params={"min_data_in_leaf": 5, "n_estimators": 20},
        info={"trained_on": ["toy"], "dense_model": "hash"},
        max_reject=0.0,
    )
    assert model.kind == "span-boosted" and model.uses_sentences and model.uses_reader
    held_out = _boosted_groups(seed=1)
    assert top_span_scores(held_out, model) == {
        "f1": pytest.approx(0.9),
        "contains": 1.0,
        "overlap": 1.0,
        "n": 60.0,
    }
    assert model.info["answerable_kept_at_threshold"] == 1.0
    again = SpanModel.from_json(model.to_json())
    assert again.kind == "span-boosted" and again.features == full
    np.testing.assert_allclose(again.score(held_out[0].features), model.score(held_out[0].features))
    assert (again.calib, again.min_confidence) == (model.calib, model.min_confidence)
    with pytest.raises(ValueError, match="feature set"):
        fit_boosted_span_model(_groups(), full)
    with pytest.raises(ValueError, match="boosters"):
        SpanModel.from_json({**model.to_json(), "features": list(FEATURE_SETS[1])})
