"""Train the weights of the default reranker (:class:`~policyqa.retriever.rerank.FeatureReranker`).

``python -m policyqa.train.rerank BENCH [--split train|test|all] [--out FILE]``

The benchmark's corpus is indexed (or the cached eval index reused, as ``policyqa eval`` does),
every selected question is run through the hybrid retriever, and each of its top ``--window``
candidates becomes a row of interpretable features
(:data:`~policyqa.retriever.rerank.FEATURE_NAMES`) labelled relevant when it belongs to a gold
document. The model is a pairwise logistic regression (RankNet with a linear scorer) on
standardised features: for each question every (relevant, non-relevant) pair of candidates
gives one training example, the difference of their feature vectors. The result is a small
JSON file (a dozen weights) that the reranker loads.

Questions are split by a hash of their id (``--split``: ``train`` is the ``--train-share`` of
them, ``test`` the rest, ``all`` every one), so a model trained on part of a benchmark can be
scored on the part it never saw: ``--eval-split test`` prints hybrid vs reranked doc-level
MRR@10 / R@1 / R@5 on that part.

The shipped model was trained on CMRC 2018 dev (``--split train``, CC BY-SA 4.0) and is scored
on ncpqa, which it never saw; see ``retriever/data/rerank_features.json`` for the exact command.
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

from policyqa.eval.splits import in_split
from policyqa.retriever.base import Hit
from policyqa.retriever.factory import retriever_for
from policyqa.retriever.rerank import (
    FEATURE_NAMES,
    FeatureModel,
    FeatureReranker,
    apply_rerank_scores,
)

__all__ = [
    "QueryCandidates",
    "collect_candidates",
    "doc_metrics",
    "fit_pairwise",
    "main",
]

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 20


@dataclass(slots=True)
class QueryCandidates:
    """One question's candidates, their full feature matrix and relevance labels."""

    query_id: str
    query: str
    hits: list[Hit]
    features: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]


def collect_candidates(
    index: Any,
    queries: dict[str, str],
    gold: dict[str, set[str]],
    *,
    window: int = DEFAULT_WINDOW,
    show_progress: bool = False,
) -> list[QueryCandidates]:
    """Hybrid top-``window`` candidates of each question with features and labels."""
    from tqdm.auto import tqdm

    retriever = retriever_for(index, "hybrid")
    reranker = FeatureReranker.for_index(index)
    out: list[QueryCandidates] = []
    for qid, text in tqdm(queries.items(), desc="candidates", disable=not show_progress):
        hits = retriever.search(text, top_k=window)
        x = reranker.features(text, hits)
        y = np.array([1 if h.doc_id in gold.get(qid, set()) else 0 for h in hits], dtype=np.int64)
        out.append(QueryCandidates(qid, text, hits, x, y))
    return out


def fit_pairwise(
    groups: Sequence[QueryCandidates],
    features: Sequence[str] = FEATURE_NAMES,
    c: float = 1.0,
    info: dict[str, Any] | None = None,
) -> FeatureModel:
    """A linear pairwise (RankNet-style) logistic model over standardised ``features``."""
    from sklearn.linear_model import LogisticRegression

    cols = [FEATURE_NAMES.index(f) for f in features]
    all_x = np.concatenate([g.features[:, cols] for g in groups if len(g.hits)])
    mean = all_x.mean(axis=0)
    std = all_x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    diffs: list[npt.NDArray[np.float64]] = []
    for g in groups:
        pos = np.flatnonzero(g.labels == 1)
        neg = np.flatnonzero(g.labels == 0)
        if not len(pos) or not len(neg):
            continue
        z = (g.features[:, cols] - mean) / std
        d = (z[pos][:, None, :] - z[neg][None, :, :]).reshape(-1, len(cols))
        # each question weighs the same however many pairs it has
        weight = 1.0 / len(d)
        diffs.append(np.hstack([d, np.full((len(d), 1), weight)]))
    if not diffs:
        raise ValueError("no question has both a relevant and a non-relevant candidate")
    data = np.concatenate(diffs)
    x = np.concatenate([data[:, :-1], -data[:, :-1]])
    y = np.concatenate([np.ones(len(data)), np.zeros(len(data))])
    w = np.concatenate([data[:, -1], data[:, -1]])
    clf = LogisticRegression(C=c, fit_intercept=False, max_iter=2000)
    clf.fit(x, y, sample_weight=w * len(groups))
    weights = np.asarray(clf.coef_[0], dtype=np.float64)
    return FeatureModel(tuple(features), weights, mean, std, dict(info or {}))


def _rr(ranking: list[str], gold: set[str], k: int = 10) -> float:
    for i, d in enumerate(ranking[:k], start=1):
        if d in gold:
            return 1.0 / i
    return 0.0


def _doc_ranking(hits: Sequence[Hit]) -> list[str]:
    seen: dict[str, None] = {}
    for h in sorted(hits, key=lambda h: h.rank):
        seen.setdefault(h.doc_id, None)
    return list(seen)


def doc_metrics(
    groups: Sequence[QueryCandidates], model: FeatureModel | None = None, gold_key: str = "labels"
) -> dict[str, float]:
    """Doc-level MRR@10, R@1 and R@5 of the candidates as ranked (or reranked by ``model``)."""
    rr: list[float] = []
    r1: list[float] = []
    r5: list[float] = []
    for g in groups:
        hits = g.hits
        if model is not None and hits:
            hits = apply_rerank_scores(hits, model.score(model.select(g.features)).tolist())
        gold = {h.doc_id for h, y in zip(g.hits, g.labels, strict=True) if y}
        ranking = _doc_ranking(hits)
        rr.append(_rr(ranking, gold))
        r1.append(float(bool(gold & set(ranking[:1]))))
        r5.append(float(bool(gold & set(ranking[:5]))))
    n = max(1, len(groups))
    return {"mrr@10": sum(rr) / n, "recall@1": sum(r1) / n, "recall@5": sum(r5) / n, "n": float(len(groups))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.train.rerank", description=__doc__)
    parser.add_argument("bench", type=Path, help="benchmark (BEIR directory or SQuAD JSON)")
    parser.add_argument("--split", default="train", choices=("train", "test", "all"))
    parser.add_argument("--train-share", type=float, default=0.5)
    parser.add_argument("--eval-split", default="test", choices=("train", "test", "all", "none"))
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="candidates per question")
    parser.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the logistic model")
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="where to write the model JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from policyqa.eval.datasets import load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.settings import get_settings

    settings = get_settings()
    bench = load_benchmark(args.bench)
    prepared = prepare_index(bench, settings, args.index_dir, show_progress=settings.progress)
    gold = {q: {d for d, g in docs.items() if g > 0} for q, docs in bench.qrels.items()}
    wanted = {"train": args.split, "eval": args.eval_split}
    try:
        train_q = {q: t for q, t in bench.queries.items() if in_split(q, args.split, args.train_share)}
        groups = collect_candidates(prepared.index, train_q, gold, window=args.window, show_progress=True)
        info = {
            "trained_on": bench.name,
            "split": args.split,
            "train_share": args.train_share,
            "questions": len(train_q),
            "window": args.window,
            "c": args.c,
            "command": "python -m policyqa.train.rerank " + " ".join(sys.argv[1:] if argv is None else argv),
        }
        model = fit_pairwise(groups, c=args.c, info=info)
        print(
            json.dumps(dict(zip(model.features, np.round(model.weights, 3).tolist(), strict=True)), indent=1)
        )
        print("train", wanted["train"], "hybrid", doc_metrics(groups), "rerank", doc_metrics(groups, model))
        if args.eval_split != "none":
            eval_q = {
                q: t for q, t in bench.queries.items() if in_split(q, args.eval_split, args.train_share)
            }
            eval_groups = collect_candidates(prepared.index, eval_q, gold, window=args.window)
            print(
                "eval",
                args.eval_split,
                "hybrid",
                doc_metrics(eval_groups),
                "rerank",
                doc_metrics(eval_groups, model),
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
