"""Evaluate on the held-out part of a benchmark that a shipped model was partly trained on.

``python -m policyqa.eval.heldout BENCH [--format squad] [--level doc|chunk] --split test
--systems hybrid,rerank,answer [--json OUT] [--report OUT.md] [--plot OUT.png] [--limit N]``

The models shipped in ``policyqa/retriever/data`` were fitted on the ``train`` split of a
benchmark (questions split by a sha1 of their id, see
:func:`policyqa.train.rerank.in_split`): the reranker on CMRC 2018 dev, the answer
span model on ncpqa-dev. Their scores on those benchmarks are therefore reported on the
``test`` split only: this command keeps those questions (the corpus stays whole) and runs the
benchmark exactly as ``policyqa eval`` does.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from policyqa.eval.datasets import Benchmark, load_benchmark
from policyqa.eval.report import format_table, module_command, write_plot, write_report
from policyqa.eval.runner import run_benchmark
from policyqa.eval.splits import in_split

__all__ = ["main", "split_benchmark"]


def split_benchmark(bench: Benchmark, split: str, train_share: float = 0.5) -> Benchmark:
    """The benchmark with only the questions of ``split`` (the corpus is kept whole)."""
    keep = [q for q in bench.queries if in_split(q, split, train_share)]
    kept = set(keep)
    return replace(
        bench,
        name=f"{bench.name}-{split}" if split != "all" else bench.name,
        queries={q: bench.queries[q] for q in keep},
        qrels={q: bench.qrels[q] for q in keep if q in bench.qrels},
        answers={q: v for q, v in bench.answers.items() if q in kept},
        answer_spans={q: v for q, v in bench.answer_spans.items() if q in kept},
        no_answer={q for q in bench.no_answer if q in kept},
        notes=[
            *bench.notes,
            f"only the '{split}' split (sha1 of the question id, train share {train_share})",
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.eval.heldout", description=__doc__)
    parser.add_argument("bench", type=Path)
    parser.add_argument("--format", dest="bench_format", choices=("beir", "squad"), default=None)
    parser.add_argument("--level", choices=("doc", "chunk"), default="doc")
    parser.add_argument("--split", choices=("train", "test", "all"), default="test")
    parser.add_argument("--train-share", type=float, default=0.5)
    parser.add_argument("--systems", default="hybrid,rerank,answer")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)

    from policyqa.settings import get_settings

    settings = get_settings()
    started = time.perf_counter()
    bench = split_benchmark(load_benchmark(args.bench, args.bench_format), args.split, args.train_share)
    bench = bench.limited(args.limit)
    result = run_benchmark(
        bench,
        settings,
        systems=[s for s in args.systems.split(",") if s.strip()],
        level=args.level,
        index_dir=args.index_dir,
        show_progress=settings.progress,
    )
    result.wall_s = time.perf_counter() - started
    result.command = module_command("policyqa.eval.heldout", argv)
    print(format_table(result))
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(
            json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    if args.report is not None:
        write_report(result, args.report)
    if args.plot is not None:
        write_plot(result, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
