"""Choose the weights of the default reranker: a grid over the sentence and feature weights.

``python -m policyqa.train.probe_sentence_rerank BENCH [--depth 20] [--json OUT] [--report OUT.md]``

For each question of a BEIR benchmark the top ``--depth`` hybrid chunks are taken and scored the
way :class:`~policyqa.retriever.rerank.SentenceReranker` scores them (its own code: every
candidate's best sentence similarity to the question, sentences read from the embedding cache or
embedded and cached, and the shipped feature model's score)::

    z(fused) + w_s · z(best sentence similarity) + w_f · z(feature model score)

Document-level MRR@10 and R@1 are reported for a grid of ``(w_s, w_f)`` on the two sha1 halves of
the questions (``train`` / ``test``, as the shipped models use), so weights chosen on one half
are scored on the other; the report marks the pair best on the train half. ``(0, 0)`` is the
hybrid order.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.eval.metrics import doc_ranking
from policyqa.eval.report import module_command, write_probe_result
from policyqa.retriever.base import Hit
from policyqa.retriever.factory import retriever_for
from policyqa.retriever.rerank import apply_rerank_scores, document_best

__all__ = ["main"]

SENTENCE_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
FEATURE_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)


def _z(x: Sequence[float]) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    sd = float(a.std())
    out: npt.NDArray[np.float64] = (a - a.mean()) / sd if sd > 1e-12 else np.zeros_like(a)
    return out


def _doc_rr(hits: Sequence[Hit], scores: npt.NDArray[np.float64], gold: set[str]) -> tuple[float, float]:
    """RR@10 and R@1 of the documents as the reranker orders them (best chunk per document)."""
    ranking = doc_ranking(apply_rerank_scores(hits, document_best(hits, scores.tolist())))
    for rank, d in enumerate(ranking[:10]):
        if d in gold:
            return 1.0 / (rank + 1), float(rank == 0)
    return 0.0, 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policyqa.train.probe_sentence_rerank", description=__doc__
    )
    parser.add_argument("bench", type=Path)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)

    from policyqa.eval.datasets import load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.eval.splits import in_split
    from policyqa.retriever.rerank import SentenceReranker
    from policyqa.settings import get_settings

    settings = get_settings()
    bench = load_benchmark(args.bench)
    prepared = prepare_index(bench, settings, None, show_progress=settings.progress)
    index = prepared.index
    rows: list[tuple[str, list[Hit], list[npt.NDArray[np.float64]]]] = []
    started = time.perf_counter()
    try:
        retriever = retriever_for(index, "hybrid")
        reranker = SentenceReranker.for_index(index)
        reranker.warm_up()
        assert reranker.features is not None  # the default feature weight is > 0
        for qid, text in bench.queries.items():
            hits = retriever.search(text, top_k=args.depth)
            if not hits:
                continue
            parts = [
                _z([h.scores.get("fused", h.score) for h in hits]),
                _z(reranker.similarities(text, hits)),
                _z(reranker.features.model_scores(text, hits)),
            ]
            rows.append((qid, hits, parts))
    finally:
        index.close()
    score_s = time.perf_counter() - started
    gold = {q: {d for d, g in v.items() if g > 0} for q, v in bench.qrels.items()}
    result: dict[str, Any] = {
        "benchmark": bench.name,
        "depth": args.depth,
        "questions": len(rows),
        "seconds": round(score_s, 1),
        "command": module_command("policyqa.train.probe_sentence_rerank", argv),
        "grid": [],
    }
    for ws in SENTENCE_WEIGHTS:
        for wf in FEATURE_WEIGHTS:
            entry: dict[str, Any] = {"sentence_weight": ws, "feature_weight": wf}
            for split in ("train", "test"):
                rr = [
                    _doc_rr(hits, p[0] + ws * p[1] + wf * p[2], gold.get(qid, set()))
                    for qid, hits, p in rows
                    if in_split(qid, split)
                ]
                entry[split] = {
                    "questions": len(rr),
                    "mrr@10": round(float(np.mean([a for a, _b in rr])), 4) if rr else 0.0,
                    "recall@1": round(float(np.mean([b for _a, b in rr])), 4) if rr else 0.0,
                }
            result["grid"].append(entry)
    best = max(
        result["grid"], key=lambda e: (e["train"]["mrr@10"], -e["sentence_weight"] - e["feature_weight"])
    )
    result["best_on_train"] = {
        "sentence_weight": best["sentence_weight"],
        "feature_weight": best["feature_weight"],
    }
    write_probe_result(result, args.json_out, args.report, _report)
    return 0


def _report(result: Mapping[str, Any]) -> str:
    best = result["best_on_train"]
    lines = [
        f"# Rerank weights: {result['benchmark']}",
        "",
        f"```\n{result['command']}\n```",
        "",
        f"Top {result['depth']} hybrid chunks per question, scored as the `sentence` reranker does: "
        "z(fused) + w_s · z(best sentence similarity) + w_f · z(feature model). Document-level "
        "MRR@10 / R@1 on the two halves of the questions; (0, 0) is the hybrid order; **bold**: "
        f"the pair best on the train half. {result['questions']} questions in {result['seconds']:.0f} s.",
        "",
        "| w_s | w_f | train MRR@10 | train R@1 | test MRR@10 | test R@1 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for e in result["grid"]:
        is_best = (e["sentence_weight"], e["feature_weight"]) == (
            best["sentence_weight"],
            best["feature_weight"],
        )
        mark = "**" if is_best else ""
        tr, te = e["train"], e["test"]
        lines.append(
            f"| {mark}{e['sentence_weight']}{mark} | {mark}{e['feature_weight']}{mark} | "
            f"{tr['mrr@10']:.4f} | {tr['recall@1']:.4f} | {te['mrr@10']:.4f} | {te['recall@1']:.4f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
