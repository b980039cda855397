"""The ``policyqa eval`` command.

``policyqa eval BENCH [--format beir|squad] [--level doc|chunk] [--systems bm25,dense,hybrid,rerank,answer]
[--index-dir DIR] [--backend embedded|milvus] [--limit N] [--json OUT] [--report OUT.md] [--plot OUT.png] [--failures OUT.md]``

The main CLI registers it with :func:`add_eval_parser` and runs it with :func:`run_eval_command`,
which returns the exit code: 0 on success, 2 on bad input or options (a one-line message on
stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from policyqa.argtypes import positive_int as _positive_int
from policyqa.eval.datasets import BenchmarkFormatError, load_benchmark
from policyqa.eval.report import format_table, write_plot, write_report
from policyqa.eval.runner import EvalError, Level, run_benchmark
from policyqa.eval.systems import (
    SystemNotAvailableError,
    UnknownSystemError,
    available_systems,
    known_systems,
)
from policyqa.settings import Settings

__all__ = ["EXIT_BAD_INPUT", "add_eval_parser", "command_line", "per_query_path", "run_eval_command"]

EXIT_BAD_INPUT = 2


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``eval`` sub-command on an ``argparse`` subparsers object and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval",
        help="benchmark retrieval (and answer) systems on a question set",
        description=(
            "Index the benchmark corpus with the current settings (reusing a cached index when the "
            "corpus and settings are unchanged), run every query through each system and print "
            "nDCG@10, MRR@10, recall@1/5/20/100 and latency. BENCH is a BEIR directory "
            "(corpus.jsonl, queries.jsonl, qrels.tsv, optional answers.jsonl) or a SQuAD-style "
            "JSON file (CMRC 2018, DRCD, DuReader-robust)."
        ),
    )
    parser.add_argument(
        "bench", metavar="BENCH", type=Path, help="benchmark directory (BEIR) or JSON file (SQuAD)"
    )
    parser.add_argument(
        "--format",
        dest="bench_format",
        choices=("beir", "squad"),
        help="benchmark format (default: detected)",
    )
    parser.add_argument(
        "--level",
        choices=("doc", "chunk"),
        help="doc: a document ranks at its best chunk (default); "
        "chunk: a chunk is relevant when it contains the gold answer span",
    )
    parser.add_argument(
        "--systems",
        metavar="LIST",
        help=f"comma-separated systems out of {','.join(known_systems())} "
        f"(default: those available now, {','.join(available_systems())})",
    )
    parser.add_argument(
        "--index-dir", type=Path, metavar="DIR", help="where to build/reuse the benchmark index"
    )
    parser.add_argument(
        "--backend",
        choices=("embedded", "milvus"),
        help="index backend (default: the backend setting); milvus without milvus_uri uses "
        "Milvus Lite in a file beside the index directory",
    )
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="evaluate only the first N queries")
    parser.add_argument("--json", dest="json_out", type=Path, metavar="OUT", help="write the results as JSON")
    parser.add_argument(
        "--report", type=Path, metavar="OUT.md", help="write a Markdown report (metrics, settings, query ids)"
    )
    parser.add_argument(
        "--plot", type=Path, metavar="OUT.png", help="write recall@k curves and latencies as a PNG"
    )
    parser.add_argument(
        "--failures",
        type=Path,
        metavar="OUT.md",
        help="write the full report with the 20 worst queries and their passages, and beside it "
        "OUT.per_query.json with every query's metrics per system "
        "(quotes the benchmark: keep it local, e.g. under eval/results/local/)",
    )
    return parser


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces ``args`` (options that were given, in canonical order)."""
    parts = ["policyqa", "eval", str(args.bench)]
    for flag, value in (
        ("--format", getattr(args, "bench_format", None)),
        ("--level", getattr(args, "level", None)),
        ("--systems", getattr(args, "systems", None)),
        ("--index-dir", getattr(args, "index_dir", None)),
        ("--backend", getattr(args, "backend", None)),
        ("--limit", getattr(args, "limit", None)),
        ("--json", getattr(args, "json_out", None)),
        ("--report", getattr(args, "report", None)),
        ("--plot", getattr(args, "plot", None)),
        ("--failures", getattr(args, "failures", None)),
    ):
        if value is not None:
            parts += [flag, str(value)]
    return shlex.join(parts)


def per_query_path(failures: Path) -> Path:
    """Where ``--failures OUT.md`` puts the per-query metrics: ``OUT.per_query.json``."""
    return failures.with_name(f"{failures.stem}.per_query.json")


def _fail(message: str) -> int:
    print(f"policyqa eval: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_eval_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``policyqa eval`` for parsed ``args``; returns the exit code."""
    started = time.perf_counter()
    if getattr(args, "backend", None):
        settings = settings.model_copy(update={"backend": args.backend})
    systems = (
        [s for s in args.systems.split(",") if s.strip()]
        if getattr(args, "systems", None)
        else available_systems()
    )
    level: Level = getattr(args, "level", None) or "doc"
    try:
        bench = load_benchmark(args.bench, getattr(args, "bench_format", None))
        bench = bench.limited(getattr(args, "limit", None))
        for note in bench.notes:
            print(f"note: {note}", file=sys.stderr)
        result = run_benchmark(
            bench,
            settings,
            systems=systems,
            level=level,
            index_dir=getattr(args, "index_dir", None),
            show_progress=settings.progress,
        )
    except (BenchmarkFormatError, EvalError, UnknownSystemError, SystemNotAvailableError) as exc:
        return _fail(str(exc))
    result.wall_s = time.perf_counter() - started
    result.command = command_line(args)

    print(format_table(result))
    try:
        if args.json_out is not None:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text(
                json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
        if args.report is not None:
            write_report(result, args.report)
        if args.plot is not None:
            write_plot(result, args.plot)
        if getattr(args, "failures", None) is not None:
            write_report(result, args.failures, failures=True)
            sidecar = per_query_path(args.failures)
            sidecar.write_text(
                json.dumps(result.per_query_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
            )
    except OSError as exc:
        return _fail(f"cannot write {exc.filename}: {exc.strerror or exc}")
    return 0
