"""Query latency of policyqa's BM25 next to bm25s and rank-bm25 on the same chunks, and of dense
and hybrid search.

The three BM25 engines score the same tokens with the same parameters: policyqa's segmented
postings (scored at query time, so the index can be updated), bm25s (every score precomputed
into a sparse matrix at build time; it cannot be updated) and rank-bm25 (pure Python, the
reference for the scores). The top 10 of each are compared, not only timed.

Run against an existing index and a queries file (JSON Lines with a ``text`` field)::

    python -m policyqa.eval.bench.speed_search --index DIR --queries ../shared/data/bench/ncpqa-dev/queries.jsonl \\
        --json eval/results/speed-search.json

All systems run in one process on the same queries, one query at a time; medians and 95th
percentiles are reported (this machine: 2 cores, so compare ratios rather than absolute times).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.index.embedded import open_embedded_index
from policyqa.retriever.factory import retriever_for
from policyqa.settings import Settings

__all__ = ["main", "measure"]


def _percentiles(ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3)}


def _time(
    fn: Callable[[str], object], queries: Sequence[str], before: Callable[[], None] | None = None
) -> list[float]:
    """Milliseconds of ``fn(q)`` per query; ``before()`` runs untimed before each."""
    out = []
    for q in queries:
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(
    index_dir: Path, queries: Sequence[str], settings: Settings, rank_bm25_queries: int = 100
) -> dict[str, Any]:
    """Latency (ms) per system on ``queries``; rank-bm25 on the first ``rank_bm25_queries``."""
    from rank_bm25 import BM25Okapi

    index = open_embedded_index(index_dir, settings)
    try:
        bm25 = retriever_for(index, "bm25")
        dense = retriever_for(index, "dense")
        hybrid = retriever_for(index, "hybrid")
        for r in (bm25, dense, hybrid):  # warm up
            r.search(queries[0], top_k=10)
        # each timed query is embedded anew (the encoder keeps recent query vectors)
        forget = getattr(index.encoder, "forget_queries", None)
        corpus = list(index.store.iter_tokens())
        t0 = time.perf_counter()
        ref = BM25Okapi(corpus, k1=settings.bm25_k1, b=settings.bm25_b)
        ref_build = time.perf_counter() - t0
        bm25s_model = _bm25s_index(corpus, settings)
        tok = index.tokenizer

        def rank_bm25_search(q: str) -> object:
            scores = ref.get_scores(tok.terms(q))
            return np.argsort(-scores)[:10]

        def policyqa_search(q: str) -> object:
            return index.bm25.top_k(tok.terms(q), 10)

        def bm25s_search(q: str) -> object:
            toks = [t for t in tok.terms(q) if t in bm25s_model.vocab_dict]
            if not toks:
                return None
            return bm25s_model.retrieve([toks], k=10, show_progress=False, n_threads=1)

        sub = list(queries[:rank_bm25_queries])
        agree = sum(
            index.bm25.top_k(tok.terms(q), 10)[0].tolist()
            == [int(i) for i in np.lexsort((np.arange(len(corpus)), -ref.get_scores(tok.terms(q))))[:10]]
            for q in sub
        )
        result: dict[str, Any] = {
            "chunks": index.store.count_chunks(),
            "queries": len(queries),
            "latency_ms": {
                "bm25_scoring_policyqa": _percentiles(_time(policyqa_search, sub)),
                "bm25_scoring_bm25s": _percentiles(_time(bm25s_search, sub)),
                "bm25_scoring_rank_bm25": _percentiles(_time(rank_bm25_search, sub)),
                "bm25": _percentiles(_time(lambda q: bm25.search(q, top_k=10), queries)),
                "dense": _percentiles(_time(lambda q: dense.search(q, top_k=10), queries, forget)),
                "hybrid": _percentiles(_time(lambda q: hybrid.search(q, top_k=10), queries, forget)),
            },
            "rank_bm25_build_s": round(ref_build, 3),
            "rank_bm25_queries": len(sub),
            "top10_equal_to_rank_bm25": f"{agree}/{len(sub)}",
        }
        lat = result["latency_ms"]
        result["speedup_p50_vs_rank_bm25"] = round(
            lat["bm25_scoring_rank_bm25"]["p50"] / max(lat["bm25_scoring_policyqa"]["p50"], 1e-6), 1
        )
        return result
    finally:
        index.close()


def _bm25s_index(corpus: Sequence[Sequence[str]], settings: Settings) -> Any:
    """bm25s over the same tokens (its Robertson variant: the same tf part as Okapi)."""
    import bm25s

    model = bm25s.BM25(k1=settings.bm25_k1, b=settings.bm25_b, method="robertson", idf_method="lucene")
    model.index([list(t) if t else ["\x00"] for t in corpus], show_progress=False)
    return model


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m policyqa.eval.bench.speed_search", description=__doc__)
    p.add_argument("--index", type=Path, required=True, help="an index built by `policyqa index`")
    p.add_argument("--queries", type=Path, required=True, help="JSON Lines with a 'text' field per query")
    p.add_argument("--limit", type=int, default=0, help="use only the first N queries")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args(argv)
    if not args.queries.is_file():
        print(f"no such queries file: {args.queries}", file=sys.stderr)
        return 2
    queries = [
        json.loads(line)["text"]
        for line in args.queries.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if args.limit:
        queries = queries[: args.limit]
    if not queries:
        print(f"{args.queries} holds no queries", file=sys.stderr)
        return 2
    result = measure(args.index, queries, Settings(progress=False))
    result["command"] = "python -m policyqa.eval.bench.speed_search " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
