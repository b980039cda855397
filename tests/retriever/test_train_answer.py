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
