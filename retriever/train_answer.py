"""Train the answer sentence model of :class:`~policyqa.retriever.answer.SpanSelector`.

``python -m policyqa.retriever.train_answer BENCH [--split train|test|all] [--out FILE]``

For every selected question with an answer span, the top passages of the reranked hybrid
search (the default reranker, as ``policyqa ask`` runs it) are split into sentences; a sentence
is relevant when it overlaps the gold answer span. The sentence scorer is a pairwise logistic
model over :data:`~policyqa.retriever.answer.SENTENCE_FEATURES` (as in
:mod:`policyqa.retriever.train_rerank`).

Then the confidence calibration: a logistic regression of "the chosen sentence is right"
(it overlaps the gold span) on the best sentence's score and its margin over the runner-up.
Finally ``min_confidence`` is tuned on the same questions: each one is asked twice, once as is
(answerable: right when the chosen sentence is right) and once with every passage of its gold
document removed (unanswerable: right when the selector abstains); the threshold with the best
mean accuracy over both is kept.

Questions are split by a hash of their id as in ``train_rerank``; ``--eval-split`` reports the
sentence accuracy on the other part.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.retriever.answer import SENTENCE_FEATURES, SentenceModel, SpanSelector
from policyqa.retriever.base import Hit
from policyqa.retriever.train_rerank import in_split

__all__ = ["SentenceGroup", "collect_sentences", "fit_sentence_model", "main", "sentence_accuracy"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class SentenceGroup:
    """One question's candidate sentences: features, labels, and the same without the gold doc."""

    query_id: str
    features: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    features_without_gold: npt.NDArray[np.float64]


def _labels(
    selector: SpanSelector, question: str, hits: Sequence[Hit], spans: Sequence[tuple[str, int, int]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    cands, x = selector.candidates(question, hits)
    top = list(hits)[: selector.passages]
    y = np.zeros(len(cands), dtype=np.int64)
    for i, c in enumerate(cands):
        h = top[c.hit_index]
        s, e = h.start + c.start, h.start + c.end
        for doc_id, a, b in spans:
            if doc_id == h.doc_id and a < e and s < b:
                y[i] = 1
    return x, y


def collect_sentences(
    index: Any,
    settings: Any,
    queries: dict[str, str],
    spans: dict[str, list[tuple[str, int, int]]],
    gold: dict[str, set[str]],
    *,
    show_progress: bool = False,
) -> list[SentenceGroup]:
    """Candidate sentences of each question with an answer span (features and labels)."""
    from tqdm.auto import tqdm

    from policyqa.qa import make_reranker, reranked_search

    reranker = make_reranker(settings, index)
    reranker.warm_up()
    selector = SpanSelector(
        index.tokenizer, index.bm25, passages=settings.answer_passages, encoder=index.encoder
    )
    selector.warm_up()
    retriever = index.retriever("hybrid")
    out: list[SentenceGroup] = []
    for qid, text in tqdm(queries.items(), desc="sentences", disable=not show_progress):
        if not spans.get(qid):
            continue
        hits = reranked_search(
            index,
            text,
            reranker,
            candidates=settings.rerank_candidates,
            top_k=settings.rerank_candidates,
            retriever=retriever,
        )
        x, y = _labels(selector, text, hits, spans[qid])
        without = [h for h in hits if h.doc_id not in gold.get(qid, set())]
        _, x_wo = selector.candidates(text, without)
        out.append(SentenceGroup(qid, x, y, x_wo))
    return out


def _pairwise(groups: Sequence[SentenceGroup], c: float) -> tuple[npt.NDArray[np.float64], ...]:
    from sklearn.linear_model import LogisticRegression

    all_x = np.concatenate([g.features for g in groups if len(g.features)])
    mean = all_x.mean(axis=0)
    std = all_x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    rows: list[npt.NDArray[np.float64]] = []
    for g in groups:
        pos = np.flatnonzero(g.labels == 1)
        neg = np.flatnonzero(g.labels == 0)
        if not len(pos) or not len(neg):
            continue
        z = (g.features - mean) / std
        d = (z[pos][:, None, :] - z[neg][None, :, :]).reshape(-1, z.shape[1])
        rows.append(np.hstack([d, np.full((len(d), 1), 1.0 / len(d))]))
    data = np.concatenate(rows)
    x = np.concatenate([data[:, :-1], -data[:, :-1]])
    y = np.concatenate([np.ones(len(data)), np.zeros(len(data))])
    w = np.concatenate([data[:, -1], data[:, -1]]) * len(groups)
    clf = LogisticRegression(C=c, fit_intercept=False, max_iter=2000)
    clf.fit(x, y, sample_weight=w)
    return np.asarray(clf.coef_[0], dtype=np.float64), mean, std


def _best(model: SentenceModel, x: npt.NDArray[np.float64]) -> tuple[int, float, float]:
    scores = model.score(x)
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    margin = best - float(scores[order[1]]) if len(order) > 1 else 1.0
    return int(order[0]), best, margin


def fit_sentence_model(
    groups: Sequence[SentenceGroup],
    c: float = 1.0,
    info: dict[str, Any] | None = None,
    unanswerable_share: float = 0.25,
) -> SentenceModel:
    """Sentence weights, confidence calibration and the tuned ``min_confidence``.

    :param unanswerable_share: the share of questions assumed to have no answer in the
        collection when the threshold is tuned (their accuracy gets this weight).
    """
    from sklearn.linear_model import LogisticRegression

    weights, mean, std = _pairwise(groups, c)
    model = SentenceModel(weights, mean, std, (1.0, 0.0, 0.0), 0.0, dict(info or {}))
    feats: list[tuple[float, float]] = []
    right: list[int] = []
    for g in groups:
        if not len(g.features):
            continue
        i, best, margin = _best(model, g.features)
        feats.append((best, margin))
        right.append(int(g.labels[i]))
    cal = LogisticRegression(C=1.0, max_iter=1000)
    cal.fit(np.asarray(feats), np.asarray(right))
    model.calib = (float(cal.coef_[0][0]), float(cal.coef_[0][1]), float(cal.intercept_[0]))
    # threshold: best mean accuracy over answerable and gold-removed (unanswerable) variants
    conf_ans = np.array([model.confidence(b, m) for b, m in feats])
    ok_ans = np.asarray(right, dtype=bool)
    conf_un = []
    for g in groups:
        if len(g.features_without_gold):
            _i, b, m = _best(model, g.features_without_gold)
            conf_un.append(model.confidence(b, m))
        else:
            conf_un.append(0.0)
    conf_un_arr = np.asarray(conf_un)
    best_t, best_acc = 0.0, -1.0
    for t in np.linspace(0.0, 0.95, 96):
        acc_ans = float(np.mean(ok_ans & (conf_ans >= t)))
        acc_un = float(np.mean(conf_un_arr < t))
        acc = (1.0 - unanswerable_share) * acc_ans + unanswerable_share * acc_un
        if acc > best_acc + 1e-9:
            best_t, best_acc = float(t), acc
    model.min_confidence = best_t
    model.info.update(
        {
            "threshold_accuracy": round(best_acc, 4),
            "unanswerable_share": unanswerable_share,
            "answerable_right_at_threshold": round(float(np.mean(ok_ans & (conf_ans >= best_t))), 4),
            "unanswerable_abstained_at_threshold": round(float(np.mean(conf_un_arr < best_t)), 4),
            "sentence_accuracy": round(float(np.mean(ok_ans)), 4),
        }
    )
    return model


def sentence_accuracy(groups: Sequence[SentenceGroup], model: SentenceModel) -> float:
    """Share of questions whose best-scored sentence overlaps the gold span."""
    right = [int(g.labels[_best(model, g.features)[0]]) for g in groups if len(g.features)]
    return float(np.mean(right)) if right else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.retriever.train_answer", description=__doc__)
    parser.add_argument("bench", type=Path, help="benchmark with answer spans (BEIR + answers.jsonl, SQuAD)")
    parser.add_argument("--format", dest="bench_format", choices=("beir", "squad"), default=None)
    parser.add_argument("--split", default="train", choices=("train", "test", "all"))
    parser.add_argument("--train-share", type=float, default=0.5)
    parser.add_argument("--eval-split", default="test", choices=("train", "test", "all", "none"))
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument(
        "--unanswerable-share", type=float, default=0.25, help="assumed share of no-answer questions"
    )
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from policyqa.eval.datasets import load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.settings import get_settings

    settings = get_settings()
    bench = load_benchmark(args.bench, args.bench_format)
    prepared = prepare_index(bench, settings, args.index_dir, show_progress=settings.progress)
    gold = {q: {d for d, g in docs.items() if g > 0} for q, docs in bench.qrels.items()}
    spans = {q: list(v) for q, v in bench.answer_spans.items()}
    try:
        train_q = {q: t for q, t in bench.queries.items() if in_split(q, args.split, args.train_share)}
        groups = collect_sentences(prepared.index, settings, train_q, spans, gold, show_progress=True)
        info = {
            "trained_on": bench.name,
            "split": args.split,
            "train_share": args.train_share,
            "questions": len(groups),
            "reranker": settings.reranker,
            "passages": settings.answer_passages,
            "c": args.c,
            "command": "python -m policyqa.retriever.train_answer "
            + " ".join(sys.argv[1:] if argv is None else argv),
        }
        model = fit_sentence_model(groups, c=args.c, info=info, unanswerable_share=args.unanswerable_share)
        print(
            json.dumps(
                dict(zip(SENTENCE_FEATURES, np.round(model.weights, 3).tolist(), strict=True)), indent=1
            )
        )
        print("train", json.dumps(model.info, ensure_ascii=False))
        if args.eval_split != "none":
            eval_q = {
                q: t for q, t in bench.queries.items() if in_split(q, args.eval_split, args.train_share)
            }
            eval_groups = collect_sentences(prepared.index, settings, eval_q, spans, gold)
            print(
                "eval", args.eval_split, "sentence accuracy", round(sentence_accuracy(eval_groups, model), 4)
            )
        if args.out is not None:
            args.out.write_text(
                json.dumps(model.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
            )
            print(f"wrote {args.out}")
    finally:
        prepared.index.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
