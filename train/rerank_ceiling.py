"""How much can any reranker add on a benchmark whose corpus holds copies of its answers?

``python -m policyqa.train.rerank_ceiling BENCH [--json OUT] [--report OUT.md]``

A reranker re-orders the hybrid top ``rerank_candidates`` chunks (its *window*). Qrels name one
gold document per question, but a policy corpus often holds the same text several times (a
notice re-published by another office, a report and its digest): a document that holds the
gold answer *with its passage* answers the question as well as the gold one, and nothing in its
content tells which copy the annotator picked. For each question this command finds the
*answer holders*: the gold documents and the *copies*, other window documents that hold the
gold passage (the answer span and ``--context`` characters either side) near verbatim, i.e.
at least ``--overlap`` of its character 5-grams (:func:`is_copy`). The answer string alone is
not enough (a short answer such as 28个 occurs in unrelated documents). Answer spans come
from the benchmark, else from the first occurrence of a reference answer in a gold document.
It reports, per sha1 half of the questions (as the shipped models are split)
and overall, document-level MRR@10 of:

* ``hybrid`` and ``rerank``: the window as retrieved and as the configured reranker orders it;
* ``content_ceiling``: a reranker that judges content perfectly, i.e. puts every holder first,
  in an order unrelated to the qrels (with one gold document among ``m`` holders its expected
  RR@10 is ``(1 + 1/2 + … + 1/min(m, 10)) / m``, see :func:`content_ceiling_rr`); questions whose
  gold document is outside the window keep the hybrid RR;
* ``qrels_oracle``: the gold document first whenever it is in the window (knows the qrels);
* ``hybrid_lenient`` / ``rerank_lenient``: RR when every holder counts as relevant.

Questions without reference answers have no copies, so their content ceiling is the qrels
oracle's.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.eval.metrics import doc_ranking
from policyqa.eval.report import module_command, write_probe_result
from policyqa.retriever.factory import retriever_for

__all__ = ["content_ceiling_rr", "is_copy", "main", "reciprocal_rank"]

SPLITS: tuple[str, ...] = ("train", "test", "all")


def reciprocal_rank(ranking: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """1 / rank of the first relevant document within the top ``k`` (0 when none)."""
    for i, d in enumerate(ranking[:k]):
        if d in relevant:
            return 1.0 / (i + 1)
    return 0.0


def content_ceiling_rr(holders: int, gold: int = 1, k: int = 10) -> float:
    """Expected RR@k when ``holders`` documents, ``gold`` of them relevant, are ranked first in a
    uniformly random order (the first relevant one at place ``i`` with probability
    ``C(holders - i, gold - 1) / C(holders, gold)``)."""
    if not 1 <= gold <= holders:
        raise ValueError(f"need 1 <= gold <= holders, got gold={gold}, holders={holders}")
    total = math.comb(holders, gold)
    return sum(math.comb(holders - i, gold - 1) / total / i for i in range(1, min(k, holders - gold + 1) + 1))


def is_copy(passage: str, text: str, overlap: float = 0.8, n: int = 5) -> bool:
    """Whether ``text`` holds ``passage`` (near) verbatim: at least ``overlap`` of the passage's
    character ``n``-grams occur in it (the whole passage when it is shorter than ``n``)."""
    if len(passage) < n:
        return bool(passage) and passage in text
    grams = {passage[i : i + n] for i in range(len(passage) - n + 1)}
    have = {text[i : i + n] for i in range(len(text) - n + 1)}
    return len(grams & have) >= overlap * len(grams)


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return round(float(np.mean([r[key] for r in rows])), 4) if rows else 0.0


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    in_window = [r for r in rows if r["gold_in_window"]]
    misses = [r for r in rows if r["rerank"] < 1.0]
    out: dict[str, Any] = {"questions": len(rows)}
    for key in ("hybrid", "rerank", "content_ceiling", "qrels_oracle", "hybrid_lenient", "rerank_lenient"):
        out[key] = _mean(rows, key)
    out["rerank_gain"] = round(out["rerank"] - out["hybrid"], 4)
    out["content_ceiling_gain"] = round(out["content_ceiling"] - out["hybrid"], 4)
    out["gold_in_window"] = round(len(in_window) / len(rows), 4) if rows else 0.0
    out["with_copies"] = (
        round(sum(r["copies"] > 0 for r in in_window) / len(in_window), 4) if in_window else 0.0
    )
    out["rerank_rank1_misses"] = len(misses)
    out["rerank_rank1_misses_on_a_copy"] = sum(r["rerank_top_copy"] for r in misses)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.train.rerank_ceiling", description=__doc__)
    parser.add_argument("bench", type=Path)
    parser.add_argument("--format", dest="bench_format", choices=("beir", "squad"), default=None)
    parser.add_argument("--train-share", type=float, default=0.5)
    parser.add_argument(
        "--context", type=int, default=30, help="characters either side of the gold answer in its passage"
    )
    parser.add_argument(
        "--overlap", type=float, default=0.8, help="share of the passage's 5-grams a copy must hold"
    )
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)

    from policyqa.eval.datasets import BenchmarkFormatError, load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.eval.splits import in_split
    from policyqa.qa import QAPipeline
    from policyqa.settings import get_settings

    settings = get_settings()
    try:
        bench = load_benchmark(args.bench, args.bench_format)
    except (BenchmarkFormatError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    started = time.perf_counter()
    prepared = prepare_index(bench, settings, None, show_progress=settings.progress)
    index = prepared.index
    window = settings.rerank_candidates
    rows: list[dict[str, Any]] = []
    try:
        retriever = retriever_for(index, "hybrid")
        qa = QAPipeline(index, settings)
        qa.reranker.warm_up()
        rerank = qa.reranked
        texts: dict[str, str] = {}

        def text_of(doc_id: str) -> str:
            if doc_id not in texts:
                doc = index.store.get_document(doc_id)
                texts[doc_id] = doc.text if doc is not None else ""
            return texts[doc_id]

        for qid, text in bench.queries.items():
            gold = {d for d, g in bench.qrels.get(qid, {}).items() if g > 0}
            if not gold:
                continue
            refs = [a for a in bench.answers.get(qid, []) if a]
            spans = list(bench.answer_spans.get(qid, [])) or [
                (d, at, at + len(a)) for d in sorted(gold) for a in refs if (at := text_of(d).find(a)) >= 0
            ]
            passages = [
                text_of(d)[max(0, a - args.context) : b + args.context] for d, a, b in spans if d in gold
            ]
            hybrid = doc_ranking(retriever.search(text, top_k=window))
            reranked = doc_ranking(rerank(text))
            copies = {
                d
                for d in hybrid
                if d not in gold and any(is_copy(p, text_of(d), args.overlap) for p in passages)
            }
            holders = gold | copies
            hybrid_rr = reciprocal_rank(hybrid, gold)
            n_gold = len(gold & set(hybrid))
            n_copies = len(copies)
            in_window = n_gold > 0
            rows.append(
                {
                    "qid": qid,
                    "hybrid": hybrid_rr,
                    "rerank": reciprocal_rank(reranked, gold),
                    "gold_in_window": in_window,
                    "copies": n_copies,
                    "content_ceiling": content_ceiling_rr(n_gold + n_copies, n_gold)
                    if in_window
                    else hybrid_rr,
                    "qrels_oracle": 1.0 if in_window else hybrid_rr,
                    "hybrid_lenient": reciprocal_rank(hybrid, holders),
                    "rerank_lenient": reciprocal_rank(reranked, holders),
                    "rerank_top_copy": bool(reranked) and reranked[0] not in gold and reranked[0] in holders,
                }
            )
    finally:
        index.close()
    result: dict[str, Any] = {
        "benchmark": bench.name,
        "window": window,
        "reranker": settings.reranker,
        "context": args.context,
        "overlap": args.overlap,
        "seconds": round(time.perf_counter() - started, 1),
        "command": module_command("policyqa.train.rerank_ceiling", argv),
        "splits": {s: _summary([r for r in rows if in_split(r["qid"], s, args.train_share)]) for s in SPLITS},
    }
    write_probe_result(result, args.json_out, args.report, _report)
    return 0


def _report(result: Mapping[str, Any]) -> str:
    lines = [
        f"# Rerank ceiling: {result['benchmark']}",
        "",
        f"```\n{result['command']}\n```",
        "",
        f"Document-level MRR@10 of the hybrid top {result['window']} chunks (the reranker's window) as "
        f"retrieved, as the `{result['reranker']}` reranker orders them, and as two ideal rerankers would: "
        "one that judges content perfectly but cannot tell copies of the answer's passage apart "
        f"(*content ceiling*: the gold document and every copy first, the gold one at a random place "
        f"among them; a copy holds ≥ {result['overlap']:.0%} of the character 5-grams of the gold answer "
        f"± {result['context']} characters) and one that knows the qrels (*qrels oracle*). *Lenient*: "
        "copies count as relevant. See `policyqa/train/rerank_ceiling.py`.",
        "",
        "| split | questions | hybrid | rerank | content ceiling | qrels oracle | hybrid lenient | "
        "rerank lenient | gold in window | with copies | rerank rank-1 misses (on a copy) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for split, s in result["splits"].items():
        lines.append(
            f"| {split} | {s['questions']} | {s['hybrid']:.4f} | {s['rerank']:.4f} | "
            f"{s['content_ceiling']:.4f} | {s['qrels_oracle']:.4f} | {s['hybrid_lenient']:.4f} | "
            f"{s['rerank_lenient']:.4f} | {s['gold_in_window']:.1%} | {s['with_copies']:.1%} | "
            f"{s['rerank_rank1_misses']} ({s['rerank_rank1_misses_on_a_copy']}) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
