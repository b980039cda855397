"""The ``policyqa eval`` command.

``policyqa eval BENCH [BENCH ...] [--format beir|squad] [--level doc|chunk] [--split train|test|all]
[--split-by query|gold] [--systems bm25,dense,hybrid,rerank,answer] [--index-dir DIR]
[--backend embedded|milvus] [--limit N] [--json OUT] [--report OUT.md] [--plot OUT.png] [--failures OUT.md]``

``policyqa eval --suite dev|FILE.toml [--data DIR] [--systems …] [--fail-on-drop] [--json OUT] [--report OUT.md]``

One benchmark prints its table. Several benchmarks (or a suite, see :mod:`policyqa.eval.suite`)
print each one's table, then one table of benchmark × system with the worst row, and the stage
check: every benchmark where a stage scores below the stage before it.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

from policyqa.argtypes import positive_int as _positive_int
from policyqa.eval.datasets import BenchmarkFormatError
from policyqa.eval.report import format_table, write_plot, write_report
from policyqa.eval.runner import EvalError, EvalResult, run_benchmark
from policyqa.eval.splits import SPLIT_BY, SPLITS
from policyqa.eval.suite import (
    SuiteEntry,
    SuiteError,
    dump_json,
    format_suite,
    load_entry,
    read_suite,
    stage_drops,
    suite_json,
    suite_markdown,
)
from policyqa.eval.systems import (
    SystemNotAvailableError,
    UnknownSystemError,
    default_systems,
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
        "bench",
        metavar="BENCH",
        type=Path,
        nargs="*",
        help="benchmark directory (BEIR) or JSON file (SQuAD); several make a suite run",
    )
    parser.add_argument(
        "--suite",
        metavar="NAME|FILE",
        help="a suite of benchmarks: a TOML file or a built-in name (dev: each benchmark's test half)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="where a suite's benchmark paths start (default: the suite's data key)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        help="score only this half of the questions (default all; a suite sets its own)",
    )
    parser.add_argument(
        "--split-by",
        choices=SPLIT_BY,
        help="split questions by their id or by their gold passage (default query)",
    )
    parser.add_argument(
        "--fail-on-drop",
        action="store_true",
        help="exit 1 when a stage scores below the stage before it on any benchmark",
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
        f"(default: {','.join(default_systems())})",
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
    parser.add_argument(
        "--answer-limit",
        type=_positive_int,
        metavar="N",
        help="answer systems read only the first N queries (retrieval systems read all)",
    )
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
    benches = args.bench if isinstance(args.bench, list) else [args.bench]
    parts = ["policyqa", "eval", *(str(b) for b in benches if b is not None)]
    for flag, value in (
        ("--suite", getattr(args, "suite", None)),
        ("--data", getattr(args, "data", None)),
        ("--format", getattr(args, "bench_format", None)),
        ("--level", getattr(args, "level", None)),
        ("--split", getattr(args, "split", None)),
        ("--split-by", getattr(args, "split_by", None)),
        ("--systems", getattr(args, "systems", None)),
        ("--index-dir", getattr(args, "index_dir", None)),
        ("--backend", getattr(args, "backend", None)),
        ("--limit", getattr(args, "limit", None)),
        ("--answer-limit", getattr(args, "answer_limit", None)),
        ("--json", getattr(args, "json_out", None)),
        ("--report", getattr(args, "report", None)),
        ("--plot", getattr(args, "plot", None)),
        ("--failures", getattr(args, "failures", None)),
    ):
        if value is not None:
            parts += [flag, str(value)]
    if getattr(args, "fail_on_drop", False):
        parts.append("--fail-on-drop")
    return shlex.join(parts)


def per_query_path(failures: Path) -> Path:
    """Where ``--failures OUT.md`` puts the per-query metrics: ``OUT.per_query.json``."""
    return failures.with_name(f"{failures.stem}.per_query.json")


def _fail(message: str) -> int:
    print(f"policyqa eval: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _entries(args: argparse.Namespace) -> list[SuiteEntry]:
    """The benchmarks of this run: the suite's, then those named on the command line (whose
    options come from the command line)."""
    entries = read_suite(args.suite, getattr(args, "data", None)) if getattr(args, "suite", None) else []
    if getattr(args, "answer_limit", None) is not None:
        entries = [replace(e, answer_limit=args.answer_limit) for e in entries]
    for path in getattr(args, "bench", None) or []:
        entries.append(
            SuiteEntry(
                path=path,
                format=getattr(args, "bench_format", None),
                level=getattr(args, "level", None) or "doc",
                split=getattr(args, "split", None) or "all",
                split_by=getattr(args, "split_by", None) or "query",
                limit=getattr(args, "limit", None),
                answer_limit=getattr(args, "answer_limit", None),
            )
        )
    if not entries:
        raise SuiteError("name a benchmark (BENCH …) or a suite (--suite dev)")
    return entries


def _write_outputs(args: argparse.Namespace, results: list[EvalResult], command: str, wall_s: float) -> None:
    if len(results) == 1:
        result = results[0]
        if args.json_out is not None:
            dump_json(result.to_json(), args.json_out)
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
        return
    if args.json_out is not None:
        dump_json(suite_json(results, command=command, wall_s=wall_s), args.json_out)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(suite_markdown(results, command=command), encoding="utf-8")


def run_eval_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``policyqa eval`` for parsed ``args``; returns the exit code."""
    started = time.perf_counter()
    if getattr(args, "backend", None):
        settings = settings.model_copy(update={"backend": args.backend})
    systems = (
        [s for s in args.systems.split(",") if s.strip()]
        if getattr(args, "systems", None)
        else default_systems()
    )
    try:
        entries = _entries(args)
        if len(entries) > 1 and (getattr(args, "plot", None) or getattr(args, "failures", None)):
            raise SuiteError("--plot and --failures take one benchmark; run the others one by one")
        if len(entries) > 1 and getattr(args, "index_dir", None):
            raise SuiteError(
                "--index-dir takes one benchmark; a suite keeps each benchmark's index in the cache"
            )
        benches = [load_entry(e) for e in entries]  # every file is checked before any indexing
        if len({b.name for b in benches}) < len(benches):
            raise SuiteError("two benchmarks of this run have one name: give each a name in the suite file")
        results: list[EvalResult] = []
        for entry, bench in zip(entries, benches, strict=True):
            for note in bench.notes:
                print(f"note: {bench.name}: {note}", file=sys.stderr)
            one_started = time.perf_counter()
            result = run_benchmark(
                bench,
                settings,
                systems=systems,
                level=entry.level,
                index_dir=getattr(args, "index_dir", None),
                show_progress=settings.progress,
                answer_limit=entry.answer_limit,
            )
            result.wall_s = time.perf_counter() - one_started
            result.command = command_line(args)
            results.append(result)
            print(format_table(result), flush=True)
            print()
    except (BenchmarkFormatError, EvalError, UnknownSystemError, SystemNotAvailableError, SuiteError) as exc:
        return _fail(str(exc))
    except ValueError as exc:  # a bad limit or split in a suite file
        return _fail(str(exc))
    wall_s = time.perf_counter() - started
    if len(results) == 1:
        results[0].wall_s = wall_s
    else:
        print(format_suite(results))
    try:
        _write_outputs(args, results, command_line(args), wall_s)
    except OSError as exc:
        return _fail(f"cannot write {exc.filename}: {exc.strerror or exc}")
    if getattr(args, "fail_on_drop", False) and stage_drops(results):
        return 1
    return 0
