"""Latency of the question path: hybrid search, the rerank of its candidate window, and ``ask``.

``python -m policyqa.eval.bench.speed_ask --index DIR --queries queries.jsonl
[--rerankers sentence,cross-encoder:builtin,none] [--limit N] [--out OUT]`` (writes OUT.json and OUT.md)

For each reranker (``NAME`` or ``cross-encoder:MODEL``), in one process on the same questions,
one question at a time: the hybrid search of the window (``rerank_candidates``), the reranker
alone on those candidates, and the whole ``ask`` (search, rerank, answer). Medians and 95th
percentiles; every stage answers one untimed question first, so model loading is not timed.
This machine has 2 cores shared with whatever else runs: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.eval.report import md_table, module_command, plain_table, write_result_pair
from policyqa.pipeline import open_index
from policyqa.qa import QAPipeline
from policyqa.settings import Settings, get_settings

__all__ = ["main", "measure", "reranker_settings"]


def reranker_settings(base: Settings, spec: str) -> Settings:
    """``base`` with the reranker named by ``spec`` (``NAME`` or ``cross-encoder:MODEL``)."""
    kind, _, model = spec.partition(":")
    update: dict[str, Any] = {"reranker": kind}
    if model:
        update["rerank_model"] = model
    return base.model_copy(update=update)


def _summary(ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 1), "p95": round(float(np.percentile(a, 95)), 1)}


def measure(qa: QAPipeline, questions: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per stage (search, rerank, ask), the median and 95th percentile in milliseconds."""
    window = qa.settings.rerank_candidates
    qa.warm_up()
    qa.ask(questions[0])  # untimed: lazy loading
    search_ms: list[float] = []
    rerank_ms: list[float] = []
    ask_ms: list[float] = []
    for q in questions:
        started = time.perf_counter()
        hits = qa.search(q, top_k=window)
        search_ms.append((time.perf_counter() - started) * 1000.0)
        started = time.perf_counter()
        qa.reranker.rerank(q, hits)
        rerank_ms.append((time.perf_counter() - started) * 1000.0)
        started = time.perf_counter()
        qa.ask(q)
        ask_ms.append((time.perf_counter() - started) * 1000.0)
    return {"search": _summary(search_ms), "rerank": _summary(rerank_ms), "ask": _summary(ask_ms)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.eval.bench.speed_ask", description=__doc__)
    parser.add_argument("--index", type=Path, required=True, help="an index directory (embedded)")
    parser.add_argument("--queries", type=Path, required=True, help="JSON Lines with a 'text' field")
    parser.add_argument("--rerankers", default="sentence,cross-encoder:builtin,none")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)

    base = get_settings().model_copy(update={"index_dir": args.index, "progress": False})
    questions = [
        str(json.loads(line)["text"])
        for line in args.queries.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ][: args.limit]
    index = open_index(args.index, base)
    rows: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for spec in [s for s in args.rerankers.split(",") if s.strip()]:
            qa = QAPipeline(index, reranker_settings(base, spec))
            rows[spec] = measure(qa, questions)
    finally:
        index.close()
    header = ["reranker", "search p50", "rerank p50", "rerank p95", "ask p50", "ask p95"]
    table = [
        [
            spec,
            f"{r['search']['p50']:.1f}",
            f"{r['rerank']['p50']:.1f}",
            f"{r['rerank']['p95']:.1f}",
            f"{r['ask']['p50']:.1f}",
            f"{r['ask']['p95']:.1f}",
        ]
        for spec, r in rows.items()
    ]
    command = module_command("policyqa.eval.bench.speed_ask", argv)
    print(plain_table(header, table))
    text = "\n".join(
        [
            "# Latency of the question path",
            "",
            "```",
            command,
            "```",
            "",
            f"{len(questions)} questions, one at a time, milliseconds: the hybrid search of the "
            f"{base.rerank_candidates}-candidate window, its rerank alone, and the whole ask.",
            "",
            md_table(header, table),
            "",
        ]
    )
    write_result_pair(args.out, {"command": command, "questions": len(questions), "ms": rows}, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
