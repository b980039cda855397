"""The span model trainer: listwise fit, calibration and the threshold's reject limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policyqa.answer.selector import SpanModel
from policyqa.answer.spans import SPAN_FEATURES
from policyqa.index.embedded import EmbeddedIndex as Index
from policyqa.train.answer import SpanGroup, fit_listwise, fit_span_model, top_span_scores
from tests.helpers import learnable_span_groups

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


def test_boosted_fit_learns_the_signal_and_round_trips() -> None:
    pytest.importorskip("lightgbm")
    from policyqa.answer.selector import FEATURE_SETS
    from policyqa.train.answer import fit_boosted_span_model

    full = FEATURE_SETS[-1]
    model = fit_boosted_span_model(
        learnable_span_groups(),
        full,
        params={"min_data_in_leaf": 5, "n_estimators": 20},
        info={"trained_on": ["toy"], "dense_model": "hash"},
        max_reject=0.0,
    )
    assert model.kind == "span-boosted" and model.uses_sentences and model.uses_reader
    assert model.info["params"]["n_estimators"] == 20 and model.info["params"]["num_leaves"] == 7
    held_out = learnable_span_groups(seed=1)
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


def test_fold_of_is_pinned_and_spreads_both_halves_of_the_split() -> None:
    from policyqa.eval.splits import fold_of, in_split

    assert [fold_of(f"q{i}", 2) for i in range(8)] == [1, 0, 1, 0, 0, 0, 0, 1]
    assert [fold_of(f"q{i}", 3) for i in range(8)] == [1, 2, 0, 1, 2, 0, 0, 2]
    ids = [f"q{i}" for i in range(400)]
    for split in ("train", "test"):
        part = [q for q in ids if in_split(q, split)]
        share = sum(fold_of(q, 2) == 0 for q in part) / len(part)
        assert 0.35 < share < 0.65, (split, share)  # other hash bits than the split's
    with pytest.raises(ValueError, match="at least 1"):
        fold_of("q1", 0)


def test_train_reader_hold_out_needs_k_of_n_and_no_calibration(capsys: pytest.CaptureFixture[str]) -> None:
    from policyqa.train.reader import main

    for bad in ("2/2", "0/1", "-1/2", "half"):
        with pytest.raises(SystemExit) as err:
            main(["bench", "--hold-out", bad, "--no-calibrate", "--out", "x.safetensors"])
        assert err.value.code == 2
        assert "K/N" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["bench", "--hold-out", "0/2", "--out", "x.safetensors"])
    assert err.value.code == 2
    assert "--no-calibrate" in capsys.readouterr().err


def test_fold_readers_need_the_boosted_kind(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from policyqa.train.answer import main

    with pytest.raises(SystemExit) as err:
        main(["bench", "--fold-readers", str(tmp_path / "a"), str(tmp_path / "b")])
    assert err.value.code == 2
    assert "--kind boosted" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["bench", "--kind", "boosted", "--fold-readers", str(tmp_path / "a"), str(tmp_path / "b")])
    assert err.value.code == 2
    assert "does not exist" in capsys.readouterr().err


def test_boosted_params_are_a_json_object_for_the_boosted_kind(capsys: pytest.CaptureFixture[str]) -> None:
    from policyqa.train.answer import main

    for bad, why in (("[1]", "JSON object"), ("{num_leaves: 3}", "not JSON")):
        with pytest.raises(SystemExit) as err:
            main(["bench", "--kind", "boosted", "--boosted-params", bad])
        assert err.value.code == 2
        assert why in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["bench", "--boosted-params", '{"num_leaves": 3}'])
    assert err.value.code == 2
    assert "--boosted-params needs --kind boosted" in capsys.readouterr().err


def test_fold_readers_give_each_question_its_folds_logits(fixture_index: Index, tmp_path: Path) -> None:
    """Cross-fitting: a question of fold K reads reader K's logits, everything else is shared."""
    pytest.importorskip("torch")
    pytest.importorskip("lightgbm")
    from policyqa.answer.reader import TransformersReader
    from policyqa.answer.selector import FEATURE_SETS
    from policyqa.answer.spans import READER_SPAN_FEATURES
    from policyqa.eval.splits import fold_of
    from policyqa.train.answer import collect_spans
    from tests.helpers import fixture_documents, fixture_queries, save_tiny_bert

    readers = [
        TransformersReader(
            save_tiny_bert(tmp_path / f"qa{k}", "BertForQuestionAnswering", **cfg),
            max_seq_length=64,
            stride=16,
        )
        for k, cfg in enumerate(({}, {"intermediate_size": 24}))
    ]
    texts = {d.id: d.text for d in fixture_documents()}
    queries = {qid: text for qid, text, _gold in fixture_queries()}
    gold = {qid: set(g) for qid, _text, g in fixture_queries()}
    answers = {qid: [texts[sorted(g)[0]][:12]] for qid, _text, g in fixture_queries()}
    assert {fold_of(q, 2) for q in queries} == {0, 1}
    full = FEATURE_SETS[-1]
    cols = [full.index(f) for f in READER_SPAN_FEATURES]

    def collect(rs: list[TransformersReader]) -> dict[str, SpanGroup]:
        groups = collect_spans(
            fixture_index,
            fixture_index.settings,
            queries,
            answers,
            {},
            gold,
            feature_set=full,
            fold_readers=rs,
        )
        return {g.query_id: g for g in groups}

    mixed = collect(readers)
    alone = [collect([r, r]) for r in readers]
    assert set(mixed) == set(queries)
    for qid, g in mixed.items():
        own = alone[fold_of(qid, 2)][qid]
        np.testing.assert_allclose(g.features, own.features)
        np.testing.assert_allclose(g.features_without_gold, own.features_without_gold)
        np.testing.assert_array_equal(g.f1, own.f1)
    # the two readers do differ, so the routing is what made the rows equal
    assert any(not np.allclose(alone[0][q].features[:, cols], alone[1][q].features[:, cols]) for q in queries)
    with pytest.raises(ValueError, match="reader's logits"):
        collect_spans(fixture_index, fixture_index.settings, queries, answers, {}, gold, fold_readers=readers)
