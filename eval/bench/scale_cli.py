"""The ``policyqa bench-scale`` command (a benchmark, not a test; see :mod:`policyqa.eval.bench.scale`).

``policyqa bench-scale [--sizes 10000,100000,1000000] [--corpus DIR] [--json OUT] [--report OUT.md]
[--queries N] [--sample N] [--embed-max N] [--workdir DIR] [--keep] [--max-build-gb G]``

The main CLI registers it with :func:`add_bench_scale_parser` and runs it with
:func:`run_bench_scale_command`, which returns the exit code (0, or 2 with a one-line message).
``--json`` merges into an existing file, so sizes can be run one at a time.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from policyqa.eval.bench.scale import (
    DEFAULT_CORPUS,
    DEFAULT_SIZES,
    BenchError,
    ScaleConfig,
    iter_sizes,
    run_scale,
    scale_table,
    write_scale_report,
)
from policyqa.settings import Settings

__all__ = ["add_bench_scale_parser", "run_bench_scale_command"]

EXIT_BAD_INPUT = 2


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(iter_sizes(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad --sizes {text!r}: {exc}") from None
    if not sizes:
        raise argparse.ArgumentTypeError("--sizes needs at least one size")
    return sizes


def add_bench_scale_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bench-scale`` on an ``argparse`` subparsers object and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench-scale",
        help="scale benchmark: build 10k-1M chunk indexes, measure build time, disk, RSS, latency",
        description=(
            "Build embedded indexes of the given sizes from the laws and regulations corpus "
            "(recombined past its own size) and report per size: build time per stage, index size "
            "on disk, RSS of a serving process, BM25/dense/hybrid latency p50/p95/p99, ANN recall@10 "
            "against exact search, and the time to add one document. Takes long: run large sizes "
            "one at a time (--json merges)."
        ),
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        metavar="LIST",
        help="comma-separated chunk counts, 10k/1M suffixes allowed (default: 10000,100000,1000000)",
    )
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, metavar="DIR", help="folder of *.jsonl documents"
    )
    parser.add_argument("--json", dest="json_out", type=Path, metavar="OUT", help="write/merge results JSON")
    parser.add_argument("--report", type=Path, metavar="OUT.md", help="write a Markdown report")
    parser.add_argument("--queries", type=int, default=200, metavar="N", help="queries per mode (200)")
    parser.add_argument(
        "--sample", type=int, default=512, metavar="N", help="real chunks embedded for sampled vectors (512)"
    )
    parser.add_argument(
        "--embed-max",
        type=int,
        default=0,
        metavar="N",
        help="sizes up to N chunks are embedded by the real model (default 0: sampled vectors everywhere)",
    )
    parser.add_argument(
        "--workdir", type=Path, metavar="DIR", help="where indexes are built (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the built indexes")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --workdir: measure an index a previous --keep run built there instead of rebuilding it",
    )
    parser.add_argument(
        "--max-build-gb", type=float, default=16.0, metavar="G", help="stop a build above this RSS (16)"
    )
    return parser


def _command(args: argparse.Namespace) -> str:
    parts = ["policyqa", "bench-scale", "--sizes", ",".join(str(s) for s in args.sizes)]
    if args.corpus != DEFAULT_CORPUS:
        parts += ["--corpus", str(args.corpus)]
    if args.workdir is not None:
        parts += ["--workdir", str(args.workdir)]
    parts += [flag for flag, on in (("--keep", args.keep), ("--reuse", args.reuse)) if on]
    for flag, value in (("--json", args.json_out), ("--report", args.report)):
        if value is not None:
            parts += [flag, str(value)]
    for flag, value, default in (
        ("--queries", args.queries, 200),
        ("--sample", args.sample, 512),
        ("--embed-max", args.embed_max, 0),
    ):
        if value != default:
            parts += [flag, str(value)]
    return shlex.join(parts)


def run_bench_scale_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``policyqa bench-scale`` for parsed ``args``; returns the exit code."""
    if not Path(args.corpus).is_dir():
        print(f"policyqa bench-scale: error: --corpus {args.corpus}: no such folder", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.reuse and args.workdir is None:
        print(
            "policyqa bench-scale: error: --reuse needs --workdir (where the kept indexes are)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.queries < 1 or args.sample < 2:
        print("policyqa bench-scale: error: --queries must be >= 1 and --sample >= 2", file=sys.stderr)
        return EXIT_BAD_INPUT
    config = ScaleConfig(
        sizes=tuple(args.sizes),
        corpus=Path(args.corpus),
        workdir=args.workdir,
        keep=bool(args.keep),
        queries=int(args.queries),
        sample=int(args.sample),
        embed_max=int(args.embed_max),
        max_build_gb=float(args.max_build_gb),
        reuse=bool(args.reuse),
    )

    def progress(size: int, entry: dict[str, Any]) -> None:
        lat = entry["latency_ms"]["hybrid"]
        print(
            f"{size:>9,} chunks: build {entry['build_s']['total_s']:.0f}s, disk {entry['disk_mb']:.0f} MB, "
            f"RSS {entry['rss_mb']:.0f} MB, hybrid p50 {lat['p50']} ms p95 {lat['p95']} ms, "
            f"ANN recall@10 {entry['ann_recall@10']}",
            file=sys.stderr,
            flush=True,
        )

    try:
        results = run_scale(config, settings, json_out=args.json_out, on_size=progress)
    except (BenchError, FileNotFoundError, ValueError) as exc:
        print(f"policyqa bench-scale: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(scale_table(results))
    if args.report is not None:
        write_scale_report(results, args.report, command=_command(args))
    return 0
