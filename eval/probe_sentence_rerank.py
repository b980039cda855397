"""Probe: would sentence-level dense similarity improve the hybrid ranking?

``python -m policyqa.eval.probe_sentence_rerank BENCH [--depth 20] [--json OUT] [--report OUT.md]``

For each question of a BEIR benchmark the top ``--depth`` hybrid chunks are taken; every sentence
of every candidate chunk is embedded with the index's encoder (as a passage), and each candidate
gets ``z(fused score) + w · z(best sentence similarity to the question)`` (z: standardised over
the question's candidates). Document-level MRR@10 and R@1 are reported for a grid of ``w`` on the
two sha1 halves of the questions (``train`` / ``test``, as the shipped models use), so a weight
chosen on one half is scored on the other. This is a measurement, not a shipped reranker: it
embeds the candidates' sentences at query time (an index would embed them once, at build time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["main"]

WEIGHTS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def _z(x: Sequence[float]) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    out: npt.NDArray[np.float64] = (a - a.mean()) / (a.std() + 1e-9)
    return out


def _doc_rr(docs: Sequence[str], gold: set[str]) -> tuple[float, float]:
    seen: list[str] = []
    for d in docs:
        if d not in seen:
            seen.append(d)
    for rank, d in enumerate(seen[:10]):
        if d in gold:
            return 1.0 / (rank + 1), float(rank == 0)
    return 0.0, 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policyqa.eval.probe_sentence_rerank", description=__doc__
    )
    parser.add_argument("bench", type=Path)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)

    from policyqa.eval.datasets import load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.retriever.rerank import split_sentences
    from policyqa.retriever.train_rerank import in_split
    from policyqa.settings import get_settings

    settings = get_settings()
    bench = load_benchmark(args.bench)
    prepared = prepare_index(bench, settings, None, show_progress=settings.progress)
    index = prepared.index
    try:
        retriever = index.retriever("hybrid")
        runs: list[tuple[str, list[Any]]] = []
        for qid, text in bench.queries.items():
            runs.append((qid, retriever.search(text, top_k=args.depth)))
        chunk_text = {h.chunk_id: h.text for _q, hits in runs for h in hits}
        sentences: list[str] = []
        owner: list[str] = []
        for cid, text in chunk_text.items():
            for a, b in split_sentences(text, max_chars=120):
                sent = text[a:b].strip()
                if len(sent) >= 4:
                    sentences.append(sent)
                    owner.append(cid)
        started = time.perf_counter()
        emb = index.encoder.encode_passages(sentences)
        encode_s = time.perf_counter() - started
        q_emb = index.encoder.encode_queries([bench.queries[q] for q, _h in runs])
    finally:
        index.close()
    rows_of: dict[str, list[int]] = {}
    for i, cid in enumerate(owner):
        rows_of.setdefault(cid, []).append(i)
    gold = {q: {d for d, g in v.items() if g > 0} for q, v in bench.qrels.items()}
    scored: list[tuple[str, list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []
    for qi, (qid, hits) in enumerate(runs):
        sims = [
            float((emb[rows_of[h.chunk_id]] @ q_emb[qi]).max()) if h.chunk_id in rows_of else 0.0
            for h in hits
        ]
        scored.append((qid, [h.doc_id for h in hits], _z([h.score for h in hits]), _z(sims)))
    result: dict[str, Any] = {
        "benchmark": bench.name,
        "depth": args.depth,
        "candidate_chunks": len(chunk_text),
        "sentences": len(sentences),
        "sentence_encode_s": round(encode_s, 1),
        "command": "python -m policyqa.eval.probe_sentence_rerank "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "splits": {},
    }
    for split in ("train", "test"):
        part = [r for r in scored if in_split(r[0], split)]
        table = {}
        for w in WEIGHTS:
            rr = [
                _doc_rr(
                    [r[1][j] for j in np.argsort(-(r[2] + w * r[3]), kind="stable")], gold.get(r[0], set())
                )
                for r in part
            ]
            table[str(w)] = {
                "mrr@10": round(float(np.mean([a for a, _b in rr])), 4),
                "recall@1": round(float(np.mean([b for _a, b in rr])), 4),
            }
        result["splits"][split] = {"questions": len(part), "by_weight": table}
    text = json.dumps(result, ensure_ascii=False, indent=1)
    print(text)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    if args.report is not None:
        lines = [
            f"# Sentence max-sim probe: {bench.name}",
            "",
            f"```\n{result['command']}\n```",
            "",
            f"Top {args.depth} hybrid chunks per question; {len(sentences)} sentences of "
            f"{len(chunk_text)} candidate chunks embedded in {encode_s:.0f} s. Score: z(fused) + w · "
            "z(best sentence similarity). Document-level MRR@10 / R@1; w = 0 is the hybrid order.",
            "",
            "| w | train MRR@10 | train R@1 | test MRR@10 | test R@1 |",
            "|---:|---:|---:|---:|---:|",
        ]
        for w in WEIGHTS:
            tr = result["splits"]["train"]["by_weight"][str(w)]
            te = result["splits"]["test"]["by_weight"][str(w)]
            lines.append(
                f"| {w} | {tr['mrr@10']:.4f} | {tr['recall@1']:.4f} | {te['mrr@10']:.4f} | {te['recall@1']:.4f} |"
            )
        args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
