"""Choose the weights of the sentence reranker on every benchmark of a suite, by the worst one.

``python -m policyqa.train.probe_sentence_rerank [--suite dev] [--data DIR] [--depth 20]
[--json OUT] [--report OUT.md]``

For each question of each benchmark of the suite the top ``--depth`` hybrid chunks are taken and
scored the way :class:`~policyqa.retriever.rerank.SentenceReranker` scores them (its own code:
every candidate's best sentence similarity to the question, sentences read from the embedding
cache or embedded and cached, and the shipped feature model's score)::

    z(fused) + w_s · z(best sentence similarity) + w_f · z(feature model score)

Document-level MRR@10 per benchmark for a grid of ``(w_s, w_f)``, on the two halves of each
benchmark as the suite splits it. The pair chosen is the one whose worst benchmark gains most
over the hybrid order ``(0, 0)`` on the ``train`` halves (ties: the better mean gain, then the
smaller weights); the ``test`` halves report what it does on questions it was not chosen on.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.eval.report import module_command, write_probe_result
from policyqa.retriever.factory import retriever_for
from policyqa.retriever.rerank import SentenceReranker, zscores
from policyqa.settings import get_settings
from policyqa.train.judge import by_worst_margin, doc_rr, suite_questions

__all__ = ["main"]

SENTENCE_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
FEATURE_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
SPLITS = ("train", "test")

F64 = npt.NDArray[np.float64]
#: one question: benchmark, half, candidate documents, gold, z-scored parts (fused, sentence, features)
Row = tuple[str, str, list[str], tuple[str, ...], tuple[F64, F64, F64]]


def collect(suite: str, data: Path | None, depth: int) -> tuple[list[Row], float]:
    """Every question's candidates and their three z-scored parts; and the seconds it took."""
    settings = get_settings()
    rows: list[Row] = []
    started = time.perf_counter()
    for bench, _entry, index, questions in suite_questions(suite, data, settings):
        retriever = retriever_for(index, "hybrid")
        reranker = SentenceReranker.for_index(index)
        reranker.warm_up()
        assert reranker.features is not None  # the default feature weight is > 0
        for q in questions:
            hits = retriever.search(q.query, top_k=depth)
            if not hits:
                continue
            parts = (
                zscores([h.scores.get("fused", h.score) for h in hits]),
                zscores(reranker.similarities(q.query, hits)),
                zscores(reranker.features.model_scores(q.query, hits)),
            )
            rows.append((bench.name, q.split, [h.doc_id for h in hits], q.gold, parts))
    return rows, time.perf_counter() - started


def grid_table(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Per weight pair and half, the MRR@10 of each benchmark."""
    out: list[dict[str, Any]] = []
    for ws, wf in itertools.product(SENTENCE_WEIGHTS, FEATURE_WEIGHTS):
        entry: dict[str, Any] = {"sentence_weight": ws, "feature_weight": wf}
        for split in SPLITS:
            per: dict[str, list[float]] = {}
            for bench, half, docs, gold, (fused, sim, feat) in rows:
                if half == split:
                    per.setdefault(bench, []).append(doc_rr(docs, fused + ws * sim + wf * feat, gold))
            entry[split] = {b: round(float(np.mean(v)), 4) for b, v in sorted(per.items())}
        out.append(entry)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policyqa.train.probe_sentence_rerank", description=__doc__
    )
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)

    rows, seconds = collect(args.suite, args.data, args.depth)
    grid = grid_table(rows)
    hybrid = grid[0]  # (0, 0)
    for e in grid:
        for split in SPLITS:
            e[f"{split}_margin"] = {b: round(v - hybrid[split][b], 4) for b, v in e[split].items()}
    best = by_worst_margin(grid, lambda e: e["train_margin"])
    result: dict[str, Any] = {
        "suite": args.suite,
        "depth": args.depth,
        "questions": {s: sum(1 for r in rows if r[1] == s) for s in SPLITS},
        "seconds": round(seconds, 1),
        "command": module_command("policyqa.train.probe_sentence_rerank", argv),
        "chosen": {"sentence_weight": best["sentence_weight"], "feature_weight": best["feature_weight"]},
        "grid": grid,
    }
    write_probe_result(result, args.json_out, args.report, _report)
    return 0


def _report(result: Mapping[str, Any]) -> str:
    chosen = result["chosen"]
    benches = list(result["grid"][0]["test"])
    lines = [
        f"# Sentence reranker weights, chosen on the {result['suite']} suite by the worst benchmark",
        "",
        f"```\n{result['command']}\n```",
        "",
        f"Top {result['depth']} hybrid chunks per question, scored as the `sentence` reranker does: "
        "z(fused) + w_s · z(best sentence similarity) + w_f · z(feature model). Document-level "
        "MRR@10 of each benchmark's test half; margins are over the hybrid order (0, 0), the worst "
        "benchmark's. **Bold**: the pair chosen on the train halves (worst margin, then mean). "
        f"Questions train / test: {result['questions']['train']} / {result['questions']['test']} "
        f"({result['seconds']:.0f} s).",
        "",
        "| w_s | w_f | "
        + " | ".join(f"{b} test" for b in benches)
        + " | worst test margin | worst train margin |",
        "|---:|---:|" + "---:|" * (len(benches) + 2),
    ]
    for e in result["grid"]:
        mark = "**" if (e["sentence_weight"], e["feature_weight"]) == tuple(chosen.values()) else ""
        cells = " | ".join(f"{e['test'][b]:.4f}" for b in benches)
        lines.append(
            f"| {mark}{e['sentence_weight']}{mark} | {mark}{e['feature_weight']}{mark} | {cells} | "
            f"{min(e['test_margin'].values()):+.4f} | {min(e['train_margin'].values()):+.4f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
