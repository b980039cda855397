"""Train the answer span model of :class:`~policyqa.answer.selector.SpanSelector`.

``python -m policyqa.train.answer BENCH [BENCH …] [--split train] [--out FILE]``

For every selected question with a reference answer, the top passages of the reranked hybrid
search (as ``policyqa ask`` runs it) give the candidate spans of
:func:`~policyqa.answer.spans.span_candidates`; each candidate is labelled with its
character F1 and ``contains`` against the references (the answer metrics of the benchmark
suite). The scorer is a linear *listwise* model: per question, a softmax over its candidates
is fitted (L2-regularised cross-entropy, L-BFGS) to the target distribution
``∝ exp((gain - max gain) / tau)`` with ``gain = F1 + lam * contains``. ``lam`` and ``tau``
are chosen by 2-fold cross-validation on the training questions (mean of F1 and contains of
the top span); the test split is never looked at.

Then the confidence calibration: a logistic regression of "the chosen span overlaps the gold
span" on the best span's score and its margin over the runner-up. ``min_confidence`` is tuned
on the same questions, each asked twice: as is (answerable: right when the chosen span overlaps
the gold span and is kept) and with every passage of its gold document removed (unanswerable:
right when the selector abstains); the threshold with the best weighted accuracy is kept
(``--unanswerable-share`` weighs the second kind) among those that reject at most
``--max-reject`` of the answerable questions.

``--kind boosted`` fits the boosted model instead: LightGBM lambdarank (:data:`BOOSTED_PARAMS`)
over the span features plus sentence similarities and the builtin reader's logits
(``FEATURE_SETS[-1]``), labelled with ``(F1 + lam * contains) / (1 + lam)`` in 20 levels, then
the same calibration and threshold. It records the encoder whose similarities it read.

Questions are split by a hash of their id as in ``train_rerank``; ``--eval-split`` reports the
F1 / contains of the top span on the other part.

``--fold-readers A_0 … A_{N-1}`` cross-fits the reader features: the builtin reader was trained
on the training questions, so its logits on them are in-sample (sharper than on new questions)
and a model fitted on them over-trusts the reader. Each ``A_K`` is a reader adapter trained the
same way but without the questions of fold ``K`` of ``N`` (``train_reader --hold-out K/N``);
a training question of fold ``K`` reads ``A_K``'s logits. The eval split still reads the builtin
reader, which is what ``policyqa ask`` runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.answer.lora import BUILTIN_MAX_ANSWER_TOKENS, ensure_builtin_reader
from policyqa.answer.reader import TransformersReader
from policyqa.answer.selector import DEFAULT_SPAN_MODEL, FEATURE_SETS, SpanModel, SpanSelector
from policyqa.answer.spans import DENSE_SPAN_FEATURES, READER_SPAN_FEATURES, SPAN_FEATURES, source_text
from policyqa.eval.splits import fold_of, in_split
from policyqa.retriever.base import Hit
from policyqa.settings import Settings

__all__ = [
    "BOOSTED_BAGS",
    "BOOSTED_PARAMS",
    "SpanGroup",
    "add_fold_readers_option",
    "fold_reader",
    "calibrate",
    "check_fold_adapters",
    "collect_spans",
    "fit_boosted_span_model",
    "fit_boosters",
    "fit_listwise",
    "fit_span_model",
    "main",
    "top_span_scores",
]

logger = logging.getLogger(__name__)

GRID: tuple[tuple[float, float], ...] = (
    (1.0, 0.2),
    (0.5, 0.4),
    (1.0, 0.4),
    (0.5, 0.8),
    (1.0, 0.8),
    (1.0, 1.5),
)


@dataclass(slots=True)
class SpanGroup:
    """One question's candidate spans: features, F1, contains and overlap with the gold span,
    the features of the candidates left when its gold document is removed, and where each
    candidate lies (document id, start, end in the document)."""

    query_id: str
    features: npt.NDArray[np.float64]
    f1: npt.NDArray[np.float64]
    contains: npt.NDArray[np.float64]
    overlap: npt.NDArray[np.float64]
    features_without_gold: npt.NDArray[np.float64]
    positions: tuple[tuple[str, int, int], ...] = ()


def collect_spans(
    index: Any,
    settings: Any,
    queries: dict[str, str],
    answers: dict[str, list[str]],
    spans: dict[str, list[tuple[str, int, int]]],
    gold: dict[str, set[str]],
    *,
    show_progress: bool = False,
    feature_set: tuple[str, ...] = SPAN_FEATURES,
    fold_readers: Sequence[Any] = (),
) -> list[SpanGroup]:
    """Candidate spans of each question with a reference answer (features and labels).

    ``feature_set``: one of :data:`~policyqa.answer.selector.FEATURE_SETS`; sentence
    similarities come from the index's encoder, reader logits from the builtin reader, or with
    ``fold_readers`` (N of them) from reader ``fold_of(question id, N)``.
    """
    from tqdm.auto import tqdm

    from policyqa.eval.metrics import char_f1, contains_answer
    from policyqa.qa import QAPipeline, span_evidence

    uses_reader = READER_SPAN_FEATURES[0] in feature_set
    if fold_readers and not uses_reader:
        raise ValueError("fold readers need a feature set with the reader's logits (--kind boosted)")
    qa = QAPipeline(index, settings)
    qa.reranker.warm_up()
    search = qa.reranked
    sentences, span_reader = span_evidence(
        settings,
        index,
        sentences=DENSE_SPAN_FEATURES[0] in feature_set,
        reader=uses_reader and not fold_readers,
    )
    selectors = [
        SpanSelector(
            index.tokenizer,
            index.bm25,
            documents=index.store,
            passages=settings.answer_passages,
            # the features come from ``feature_set``; the shipped linear model only fills the slot
            # (the boosted one may be the file this run replaces)
            model_path=Path(str(resources.files("policyqa.answer") / "data" / DEFAULT_SPAN_MODEL)),
            sentences=sentences,
            span_reader=reader,
        )
        for reader in (fold_readers or [span_reader])
    ]
    for sel in selectors:
        sel.warm_up()
    out: list[SpanGroup] = []
    for qid, text in tqdm(queries.items(), desc="spans", disable=not show_progress):
        refs = [a for a in answers.get(qid, []) if a]
        if not refs:
            continue
        selector = selectors[fold_of(qid, len(selectors))] if fold_readers else selectors[0]
        hits: list[Hit] = search(text)
        cands, x, text_of = selector.candidates(text, hits, feature_set)
        top = hits[: selector.passages]
        pieces = []
        for c in cands:
            h = top[c.hit_index]
            doc, base = source_text(h, text_of)
            pieces.append(doc[c.start - base : c.end - base])
        f1 = np.array([char_f1(p, refs) for p in pieces], dtype=np.float64)
        co = np.array([float(contains_answer(p, refs)) for p in pieces], dtype=np.float64)
        ov = np.array(
            [
                float(any(c.doc_id == d and c.start < b and a < c.end for d, a, b in spans.get(qid, [])))
                for c in cands
            ],
            dtype=np.float64,
        )
        without = [h for h in hits if h.doc_id not in gold.get(qid, set())]
        _c, x_wo, _t = selector.candidates(text, without, feature_set)
        where = tuple((c.doc_id, c.start, c.end) for c in cands)
        out.append(SpanGroup(qid, x, f1, co, ov, x_wo, where))
    return out


def check_fold_adapters(adapters: Sequence[Path], split: str, train_share: float) -> list[dict[str, Any]]:
    """The ``policyqa_reader`` info of ``train_reader --hold-out K/N`` adapters ``K = 0 … N-1``
    (in that order, trained on ``split``); raises ValueError saying what does not fit."""
    from policyqa.answer.lora import adapter_info

    n = len(adapters)
    if n < 2:
        raise ValueError(f"--fold-readers needs at least 2 adapters (one per fold), got {n}")
    infos: list[dict[str, Any]] = []
    for k, path in enumerate(adapters):
        if not path.is_file():
            raise ValueError(f"fold reader {path} does not exist")
        info = adapter_info(path)
        # every stage (the adapter and the ones it was initialised from) must leave fold K out
        held: list[Any] = []
        stage: dict[str, Any] | None = info
        while stage:
            held += [s.get("held_out_fold") for s in stage.get("trained_on", []) if s.get("format") == "beir"]
            stage = stage.get("init")
        if not held or any(h != [k, n] for h in held):
            raise ValueError(
                f"fold reader {k} ({path}) must be trained with train_reader --hold-out {k}/{n}, "
                f"its benchmarks held out {held or 'nothing'}"
            )
        if info.get("split") != split or info.get("train_share") != train_share:
            raise ValueError(
                f"fold reader {path} was trained on split {info.get('split')!r} "
                f"(share {info.get('train_share')}), the span model on {split!r} (share {train_share})"
            )
        infos.append(info)
    return infos


def fold_reader(settings: Settings, adapter: Path) -> TransformersReader:
    """A reader over ``adapter`` merged into the default model like the builtin one (in the
    cache, by the adapter's digest)."""
    return TransformersReader(
        ensure_builtin_reader(settings.cache_dir, adapter, show_progress=settings.progress),
        passages=settings.answer_passages,
        min_confidence=0.0,
        device=settings.device,
        max_answer_tokens=BUILTIN_MAX_ANSWER_TOKENS,
        backend=settings.answer_reader_backend,
    )


def add_fold_readers_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The ``--fold-readers ADAPTER…`` option (the span model's trainer and its probe)."""
    parser.add_argument(
        "--fold-readers", type=Path, nargs="+", default=None, metavar="ADAPTER", help=help_text
    )


def _standardise(groups: Sequence[SpanGroup]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    all_x = np.concatenate([g.features for g in groups if len(g.features)])
    mean = all_x.mean(axis=0)
    std = all_x.std(axis=0)
    return mean, np.where(std > 1e-9, std, 1.0)


def fit_listwise(
    groups: Sequence[SpanGroup],
    lam: float = 1.0,
    tau: float = 0.2,
    l2: float = 1.0,
    mean: npt.NDArray[np.float64] | None = None,
    std: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Weights (on standardised features), mean and std of the listwise softmax model."""
    from scipy.optimize import minimize

    used = [g for g in groups if len(g.features)]
    if not used:
        raise ValueError("no question has a candidate span")
    if mean is None or std is None:
        mean, std = _standardise(used)
    data: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []
    for g in used:
        z = (g.features - mean) / std
        gain = g.f1 + lam * g.contains
        t = np.exp((gain - gain.max()) / tau)
        data.append((z, t / t.sum()))
    n = float(len(data))

    def loss(w: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        total = 0.0
        grad = np.zeros_like(w)
        for z, t in data:
            s = z @ w
            s = s - s.max()
            e = np.exp(s)
            p = e / e.sum()
            total -= float(t @ np.log(p + 1e-300))
            grad += z.T @ (p - t)
        return total / n + 0.5 * l2 * float(w @ w) / n, grad / n + l2 * w / n

    res = minimize(loss, np.zeros(len(SPAN_FEATURES)), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(res.x, dtype=np.float64), mean, std


def _best(model: SpanModel, x: npt.NDArray[np.float64]) -> tuple[int, float, float]:
    scores = model.score(x)
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    margin = best - float(scores[order[1]]) if len(order) > 1 else 1.0
    return int(order[0]), best, margin


def top_span_scores(groups: Sequence[SpanGroup], model: SpanModel) -> dict[str, float]:
    """Mean F1, contains and gold overlap of the top-scored span (0 for no candidate)."""
    f1: list[float] = []
    co: list[float] = []
    ov: list[float] = []
    for g in groups:
        if not len(g.features):
            f1.append(0.0)
            co.append(0.0)
            ov.append(0.0)
            continue
        i = _best(model, g.features)[0]
        f1.append(float(g.f1[i]))
        co.append(float(g.contains[i]))
        ov.append(float(g.overlap[i]))
    n = max(1, len(groups))
    return {"f1": sum(f1) / n, "contains": sum(co) / n, "overlap": sum(ov) / n, "n": float(len(groups))}


def _choose(groups: Sequence[SpanGroup], l2: float) -> tuple[float, float, dict[str, float]]:
    """(lam, tau) with the best 2-fold cross-validated mean of F1 and contains."""
    folds = [[g for i, g in enumerate(groups) if i % 2 == k] for k in (0, 1)]
    best: tuple[float, float, float] | None = None
    table: dict[str, float] = {}
    for lam, tau in GRID:
        vals: list[float] = []
        for k in (0, 1):
            w, m, s = fit_listwise(folds[k], lam, tau, l2)
            r = top_span_scores(folds[1 - k], SpanModel(w, m, s, (1.0, 0.0, 0.0), 0.0))
            vals.append((r["f1"] + r["contains"]) / 2)
        v = float(np.mean(vals))
        table[f"lam={lam},tau={tau}"] = round(v, 4)
        logger.info("cv lam=%s tau=%s: %.4f", lam, tau, v)
        if best is None or v > best[2]:
            best = (lam, tau, v)
    assert best is not None
    return best[0], best[1], table


def fit_span_model(
    groups: Sequence[SpanGroup],
    *,
    lam: float | None = None,
    tau: float | None = None,
    l2: float = 1.0,
    info: dict[str, Any] | None = None,
    unanswerable_share: float = 0.25,
    max_reject: float = 0.02,
    narrow: tuple[float, float] | None = None,
) -> SpanModel:
    """Span weights (``lam``/``tau`` by cross-validation when None), calibration, threshold,
    and with ``narrow=(lam, tau)`` the narrowing weights (fitted with that gain and temperature
    on the same standardised features; use a small ``lam`` so that F1 dominates).

    The threshold never rejects more than ``max_reject`` of the (answerable) training questions.
    """
    meta = dict(info or {})
    if lam is None or tau is None:
        lam, tau, table = _choose(groups, l2)
        meta["cv"] = table
    weights, mean, std = fit_listwise(groups, lam, tau, l2)
    meta.update({"lam": lam, "tau": tau, "l2": l2})
    model = SpanModel(weights, mean, std, (1.0, 0.0, 0.0), 0.0, meta)
    if narrow is not None:
        model.narrow_weights = fit_listwise(groups, narrow[0], narrow[1], l2, mean, std)[0]
        meta["narrow"] = {"lam": narrow[0], "tau": narrow[1]}
    return calibrate(model, groups, unanswerable_share=unanswerable_share, max_reject=max_reject)


#: LightGBM settings of the boosted span model. Chosen by 3-fold cross-validation on the
#: ncpqa-dev train split (F1 of the top span; 150/300/600 trees, 7/15 leaves, 50/100 per leaf,
#: contains weight 0 or 0.3 all scored within 0.015 of each other, 0.3 kept more contains); a
#: bag of 5 on 80 % row and column subsamples scored 0.571 against one model's 0.552.
#: Adding cmrc2018-dev training questions lowered it (0.486 with 900 of them).
BOOSTED_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 50,
    "n_estimators": 150,
    "lambdarank_truncation_level": 5,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
}
#: Models in the bag of the boosted span model.
BOOSTED_BAGS = 5
#: Relevance levels the gain ``(F1 + lam * contains) / (1 + lam)`` is rounded to.
BOOSTED_LEVELS = 20


def fit_boosters(
    groups: Sequence[SpanGroup],
    features: tuple[str, ...],
    *,
    lam: float = 0.3,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    bags: int = BOOSTED_BAGS,
) -> tuple[Any, ...]:
    """A bag of ``bags`` LightGBM lambdarank boosters over ``features`` (labels: the gain
    ``(F1 + lam * contains) / (1 + lam)`` in :data:`BOOSTED_LEVELS` levels; each on its own
    row and column subsamples, seeds ``seed …``); a model scores with the mean of theirs."""
    if bags < 1:
        raise ValueError(f"bags must be at least 1, got {bags}")
    import lightgbm

    if features not in FEATURE_SETS:
        raise ValueError(f"unknown feature set of {len(features)} features")
    used = [g for g in groups if len(g.features)]
    if not used:
        raise ValueError("no question has a candidate span")
    if any(g.features.shape[1] != len(features) for g in used):
        raise ValueError("the spans' feature rows do not match the feature set")
    levels = BOOSTED_LEVELS
    x = np.concatenate([g.features for g in used])
    y = np.concatenate([np.rint((g.f1 + lam * g.contains) / (1 + lam) * levels).astype(int) for g in used])
    settings = {**BOOSTED_PARAMS, **(params or {})}
    boosters = []
    for b in range(bags):
        ranker = lightgbm.LGBMRanker(
            **settings,
            label_gain=[2 ** (5 * i / levels) - 1 for i in range(levels + 1)],
            random_state=seed + b,
            n_jobs=1,
            verbose=-1,
        )
        ranker.fit(x, y, group=[len(g.features) for g in used])
        boosters.append(ranker.booster_)
    return tuple(boosters)


def fit_boosted_span_model(
    groups: Sequence[SpanGroup],
    features: tuple[str, ...],
    *,
    lam: float = 0.3,
    params: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    unanswerable_share: float = 0.25,
    max_reject: float = 0.02,
    seed: int = 0,
    bags: int = BOOSTED_BAGS,
) -> SpanModel:
    """The boosted span model: the boosters of :func:`fit_boosters`, whose scores are
    averaged, then the calibration and threshold of :func:`calibrate`."""
    boosters = fit_boosters(groups, features, lam=lam, params=params, seed=seed, bags=bags)
    meta = {**(info or {}), "lam": lam, "params": {**BOOSTED_PARAMS, **(params or {})}, "bags": bags}
    empty = np.zeros(0, dtype=np.float64)
    model = SpanModel(empty, empty, empty, (1.0, 0.0, 0.0), 0.0, meta, boosters=boosters, features=features)
    return calibrate(model, groups, unanswerable_share=unanswerable_share, max_reject=max_reject)


def calibrate(
    model: SpanModel,
    groups: Sequence[SpanGroup],
    *,
    unanswerable_share: float = 0.25,
    max_reject: float = 0.02,
) -> SpanModel:
    """Fit ``model``'s confidence calibration and its no-answer threshold on ``groups``."""
    from sklearn.linear_model import LogisticRegression

    feats: list[tuple[float, float]] = []
    right: list[int] = []
    for g in groups:
        if not len(g.features):
            continue
        i, best, margin = _best(model, g.features)
        feats.append((best, margin))
        right.append(int(g.overlap[i] > 0))
    if len(set(right)) > 1:
        cal = LogisticRegression(C=1.0, max_iter=1000)
        cal.fit(np.asarray(feats), np.asarray(right))
        model.calib = (float(cal.coef_[0][0]), float(cal.coef_[0][1]), float(cal.intercept_[0]))
    conf_ans = np.array([model.confidence(b, m) for b, m in feats])
    ok_ans = np.asarray(right, dtype=bool)
    conf_un = []
    for g in groups:
        if not len(g.features):
            continue
        if len(g.features_without_gold):
            _i, b, m = _best(model, g.features_without_gold)
            conf_un.append(model.confidence(b, m))
        else:
            conf_un.append(0.0)
    conf_un_arr = np.asarray(conf_un)
    best_t, best_acc = 0.0, -1.0
    for t in np.linspace(0.0, 0.95, 96):
        if float(np.mean(conf_ans < t)) > max_reject:
            break
        acc_ans = float(np.mean(ok_ans & (conf_ans >= t)))
        acc_un = float(np.mean(conf_un_arr < t))
        acc = (1.0 - unanswerable_share) * acc_ans + unanswerable_share * acc_un
        if acc > best_acc + 1e-9:
            best_t, best_acc = float(t), acc
    model.min_confidence = best_t
    scores = top_span_scores(groups, model)
    model.info.update(
        {
            "threshold_accuracy": round(best_acc, 4),
            "unanswerable_share": unanswerable_share,
            "max_reject": max_reject,
            "answerable_kept_at_threshold": round(float(np.mean(conf_ans >= best_t)), 4),
            "unanswerable_abstained_at_threshold": round(float(np.mean(conf_un_arr < best_t)), 4),
            "train_top_span": {k: round(v, 4) for k, v in scores.items()},
        }
    )
    return model


def _json_object(value: str) -> dict[str, Any]:
    """A JSON object given on the command line."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {value!r}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object such as '{{\"num_leaves\": 15}}', got {value!r}"
        )
    return parsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.train.answer", description=__doc__)
    parser.add_argument(
        "bench", type=Path, nargs="+", help="benchmarks with answers (BEIR + answers.jsonl, SQuAD)"
    )
    parser.add_argument("--split", default="train", choices=("train", "test", "all"))
    parser.add_argument("--train-share", type=float, default=0.5)
    parser.add_argument("--eval-split", default="test", choices=("train", "test", "all", "none"))
    parser.add_argument("--lam", type=float, default=None, help="weight of contains in the gain (None: CV)")
    parser.add_argument("--tau", type=float, default=None, help="target temperature (None: CV)")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument(
        "--narrow-lam", type=float, default=0.2, help="contains weight of the narrowing model's gain"
    )
    parser.add_argument("--narrow-tau", type=float, default=0.2, help="the narrowing model's temperature")
    parser.add_argument("--no-narrow", action="store_true", help="fit no narrowing model")
    parser.add_argument(
        "--unanswerable-share", type=float, default=0.25, help="assumed share of no-answer questions"
    )
    parser.add_argument(
        "--max-reject", type=float, default=0.02, help="most answerable questions the threshold may reject"
    )
    parser.add_argument(
        "--kind",
        choices=("linear", "boosted"),
        default="linear",
        help="linear: the listwise linear model over the span features; boosted: LightGBM "
        "lambdarank over the span features, sentence similarities and the builtin reader's logits",
    )
    parser.add_argument("--boosted-lam", type=float, default=0.3, help="contains weight of the boosted gain")
    parser.add_argument(
        "--boosted-params",
        type=_json_object,
        default=None,
        metavar="JSON",
        help="LightGBM settings over BOOSTED_PARAMS (--kind boosted), e.g. '{\"num_leaves\": 15}'",
    )
    add_fold_readers_option(
        parser,
        "cross-fitted reader features (--kind boosted): adapter K trained with "
        "policyqa.train.reader --hold-out K/N gives the logits of the training questions of fold K",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    feature_set = FEATURE_SETS[-1] if args.kind == "boosted" else SPAN_FEATURES
    fold_infos: list[dict[str, Any]] = []
    if args.boosted_params is not None and args.kind != "boosted":
        parser.error("--boosted-params needs --kind boosted")
    if args.fold_readers is not None:
        if args.kind != "boosted":
            parser.error("--fold-readers needs --kind boosted (only it reads the reader's logits)")
        try:
            fold_infos = check_fold_adapters(args.fold_readers, args.split, args.train_share)
        except ValueError as exc:
            parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from policyqa.eval.datasets import load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.settings import get_settings

    settings = get_settings()
    train: list[SpanGroup] = []
    evals: dict[str, list[SpanGroup]] = {}
    names: list[str] = []
    dense_models: set[str] = set()
    fold_readers = [fold_reader(settings, a) for a in args.fold_readers or []]
    for path in args.bench:
        bench = load_benchmark(path)
        names.append(bench.name)
        prepared = prepare_index(bench, settings, None, show_progress=settings.progress)
        gold = {q: {d for d, g in docs.items() if g > 0} for q, docs in bench.qrels.items()}
        spans = {q: list(v) for q, v in bench.answer_spans.items()}
        answers = {q: list(v) for q, v in bench.answers.items()}
        try:
            train_q = {q: t for q, t in bench.queries.items() if in_split(q, args.split, args.train_share)}
            dense_models.add(str(prepared.index.encoder.model_id))
            train += collect_spans(
                prepared.index,
                settings,
                train_q,
                answers,
                spans,
                gold,
                show_progress=settings.progress,
                feature_set=feature_set,
                fold_readers=fold_readers,
            )
            if args.eval_split != "none":
                eval_q = {
                    q: t for q, t in bench.queries.items() if in_split(q, args.eval_split, args.train_share)
                }
                evals[bench.name] = collect_spans(
                    prepared.index, settings, eval_q, answers, spans, gold, feature_set=feature_set
                )
        finally:
            prepared.index.close()
    del fold_readers  # (their models are not needed for the fit)
    info = {
        "trained_on": names,
        "split": args.split,
        "train_share": args.train_share,
        "questions": len(train),
        "reranker": settings.reranker,
        "passages": settings.answer_passages,
        "command": "python -m policyqa.train.answer " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    if args.kind == "boosted":
        if len(dense_models) != 1:
            raise SystemExit(f"the benchmarks' indexes embed with different encoders: {sorted(dense_models)}")
        info["dense_model"] = dense_models.pop()
        info["reader"] = "builtin"
        if fold_infos:
            info["fold_readers"] = [
                {"adapter": a.name, "command": i.get("command"), "init": (i.get("init") or {}).get("command")}
                for a, i in zip(args.fold_readers, fold_infos, strict=True)
            ]
        model = fit_boosted_span_model(
            train,
            feature_set,
            lam=args.boosted_lam,
            params=args.boosted_params,
            info=info,
            unanswerable_share=args.unanswerable_share,
            max_reject=args.max_reject,
        )
    else:
        model = fit_span_model(
            train,
            lam=args.lam,
            tau=args.tau,
            l2=args.l2,
            info=info,
            unanswerable_share=args.unanswerable_share,
            max_reject=args.max_reject,
            narrow=None if args.no_narrow else (args.narrow_lam, args.narrow_tau),
        )
        weights = dict(zip(SPAN_FEATURES, np.round(model.weights, 3).tolist(), strict=True))
        print(json.dumps(weights, indent=1))
    print("train", json.dumps(model.info, ensure_ascii=False))
    for name, groups in evals.items():
        print("eval", name, args.eval_split, json.dumps(top_span_scores(groups, model)))
    if args.out is not None:
        args.out.write_text(
            json.dumps(model.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
