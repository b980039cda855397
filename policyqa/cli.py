"""The ``policyqa`` command line: index, search, ask, serve, eval, delete, info."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from policyqa import __version__
from policyqa.corpus.pages import page_label
from policyqa.retriever.factory import retriever_for
from policyqa.settings import Settings

__all__ = ["main"]

logger = logging.getLogger("policyqa.cli")

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A user-facing error: printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index",
        "--index-dir",
        dest="index",
        type=Path,
        default=None,
        help="index directory (default: the POLICYQA_INDEX_DIR setting)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policyqa",
        description="Search and question answering over Chinese policy documents.",
    )
    parser.add_argument("--version", action="version", version=f"policyqa {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="index documents (no PATHS: the built-in demo corpus)")
    p.add_argument(
        "paths", nargs="*", type=Path, help="files or directories (.txt .md .html .docx .pdf .jsonl)"
    )
    _add_common(p)
    p.add_argument("--add", action="store_true", help="add to the existing index instead of rebuilding it")

    p = sub.add_parser("search", help="search the index")
    p.add_argument("query", help="question or keywords")
    _add_common(p)
    p.add_argument("--mode", choices=["bm25", "dense", "hybrid"], default="hybrid")
    p.add_argument(
        "--top-k", type=int, default=None, help="number of results (default: the POLICYQA_TOP_K setting)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--issuer", action="append", default=[], help="only documents whose issuing body contains this"
    )
    p.add_argument(
        "--doc-type", action="append", default=[], help="only documents of this type (通知, 意见 …)"
    )
    p.add_argument("--region", action="append", default=[], help="only documents of this region")
    p.add_argument("--date-from", type=date.fromisoformat, default=None, help="YYYY-MM-DD, inclusive")
    p.add_argument("--date-to", type=date.fromisoformat, default=None, help="YYYY-MM-DD, inclusive")

    p = sub.add_parser("delete", help="delete documents from the index by id")
    p.add_argument("doc_ids", nargs="+")
    _add_common(p)

    p = sub.add_parser("info", help="show the index manifest")
    _add_common(p)

    from policyqa.api.cli import add_serve_parser
    from policyqa.ask_cli import add_ask_parser
    from policyqa.eval.bench.scale_cli import add_bench_scale_parser
    from policyqa.eval.cli import add_eval_parser

    add_ask_parser(sub)
    add_serve_parser(sub)
    add_eval_parser(sub)
    add_bench_scale_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "no_progress", False):
        overrides["progress"] = False
    if getattr(args, "index", None) is not None:
        overrides["index_dir"] = args.index
    if getattr(args, "index_dir", None) is not None and "index_dir" not in overrides:
        overrides["index_dir"] = args.index_dir
    return Settings(**overrides)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("policyqa").setLevel(logging.INFO if verbose == 0 else level)
    # third-party libraries that set their own loggers to DEBUG (bm25s) or attach handlers (jieba)
    for name in ("jieba", "bm25s"):
        logging.getLogger(name).setLevel(logging.WARNING if verbose < 2 else logging.DEBUG)


# -- commands ---------------------------------------------------------------------------------
def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa import pipeline
    from policyqa.corpus.demo import load_demo
    from policyqa.corpus.loaders import load_paths
    from policyqa.corpus.ocr import OcrReader
    from policyqa.corpus.originals import ORIGINALS_DIR, OriginalStore

    if args.paths:
        missing = [str(p) for p in args.paths if not p.exists()]
        if missing:
            raise CliError(f"no such file or directory: {', '.join(missing)}", EXIT_USAGE)
        originals = OriginalStore(settings.index_dir / ORIGINALS_DIR)
        report = load_paths(args.paths, ocr=OcrReader.from_settings(settings), originals=originals)
        for path, reason in report.errors:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        for path, reason in report.warnings:
            print(f"warning {path}: {reason}", file=sys.stderr)
        documents = report.documents
        if not documents:
            raise CliError("no readable documents found in the given paths; nothing was indexed")
    else:
        documents = load_demo()
        print(
            f"no paths given: indexing the built-in demo corpus ({len(documents)} documents)", file=sys.stderr
        )
    t0 = time.perf_counter()
    if args.add:
        manifest = pipeline.add_documents(
            documents, settings.index_dir, settings, show_progress=settings.progress
        )
    else:
        manifest = pipeline.build_index(
            documents, settings.index_dir, settings, show_progress=settings.progress
        )
    counts = manifest["counts"]
    change = manifest["last_change"]
    where = str(settings.index_dir)
    if manifest.get("backend") == "milvus":
        where = f"milvus {manifest['uri']} collection {manifest['collection']}"
    sentences = ""
    if "sentences" in change:
        sentences = f", {change['sentences']} sentence vectors ({change['sentences_embedded']} embedded)"
    print(
        f"index {where}: {counts['documents']} documents, {counts['chunks']} chunks "
        f"({change['embedded']} embedded, {change['embedding_cache_hits']} from cache){sentences} "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    return EXIT_OK


def _filters(args: argparse.Namespace) -> Any:
    from policyqa.retriever.base import Filters

    return Filters(
        issuer=tuple(args.issuer),
        doc_type=tuple(args.doc_type),
        region=tuple(args.region),
        date_from=args.date_from,
        date_to=args.date_to,
    )


def _cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.pipeline import open_index

    query = args.query.strip()
    if not query:
        raise CliError(
            'the query is empty: give a question or keywords, e.g. policyqa search "稳岗返还比例"', EXIT_USAGE
        )
    top_k = args.top_k if args.top_k is not None else settings.top_k
    if top_k < 1:
        raise CliError(f"--top-k must be at least 1, got {top_k}", EXIT_USAGE)
    index = open_index(settings.index_dir, settings)
    try:
        retriever = retriever_for(index, args.mode)
        t0 = time.perf_counter()
        hits = retriever.search(query, top_k=top_k, filters=_filters(args))
        elapsed = time.perf_counter() - t0
    finally:
        index.close()
    if args.json:
        out = {"query": query, "mode": args.mode, "hits": [_hit_json(h) for h in hits]}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not hits:
        print(f"no results for {query!r} ({args.mode})")
        return EXIT_OK
    print(f"{len(hits)} results for {query!r} ({args.mode}, {elapsed * 1000:.0f} ms)\n")
    for h in hits:
        cite = " · ".join(x for x in (h.issuer, h.doc_number, h.date) if x)
        print(f"[{h.rank}] {h.score:.4f}  {h.title or h.doc_id}")
        if cite:
            print(f"    {cite}")
        where = "".join(f"{x} · " for x in (h.heading, page_label(h.page)) if x)
        print(f"    {where}doc {h.doc_id} chars {h.start}-{h.end}")
        text = h.text.replace("\n", " ")
        print(f"    {text[:160]}{'…' if len(text) > 160 else ''}\n")
    return EXIT_OK


def _hit_json(h: Any) -> dict[str, Any]:
    keys = (
        "rank",
        "score",
        "doc_id",
        "chunk_id",
        "text",
        "start",
        "end",
        "title",
        "doc_number",
        "issuer",
        "date",
        "heading",
        "page",
    )
    d = h.to_dict()
    out = {k: d[k] for k in keys}
    out["scores"] = d["scores"]
    out["ranks"] = d["ranks"]
    return out


def _cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.pipeline import delete_documents

    try:
        manifest = delete_documents(args.doc_ids, settings.index_dir, settings)
    except KeyError as exc:
        raise CliError(str(exc.args[0]), EXIT_USAGE) from None
    counts = manifest["counts"]
    print(
        f"deleted {len(args.doc_ids)} document(s); {counts['documents']} documents, {counts['chunks']} chunks remain"
    )
    return EXIT_OK


def _cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.pipeline import describe_index

    manifest = describe_index(settings.index_dir, settings)
    print(json.dumps(manifest, ensure_ascii=False, indent=2))
    return EXIT_OK


def _run_ask(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.ask_cli import run_ask_command

    return int(run_ask_command(args, settings))


def _run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.api.cli import run_serve_command

    return int(run_serve_command(args, settings))


def _run_eval(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.eval.cli import run_eval_command

    return int(run_eval_command(args, settings))


def _run_bench_scale(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.eval.bench.scale_cli import run_bench_scale_command

    return int(run_bench_scale_command(args, settings))


#: Every subcommand and what runs it (the heavy ones import their module when they run, so that
#: ``policyqa --help`` and a search stay quick).
_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "index": _cmd_index,
    "search": _cmd_search,
    "delete": _cmd_delete,
    "info": _cmd_info,
    "ask": _run_ask,
    "serve": _run_serve,
    "eval": _run_eval,
    "bench-scale": _run_bench_scale,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(args.verbose)
    from policyqa.index.layout import IndexNotFoundError, IndexVersionError
    from policyqa.index.milvus import is_milvus_error, milvus_error_line

    try:
        settings = _settings(args)
        return _COMMANDS[args.command](args, settings)
    except CliError as exc:
        print(f"policyqa {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except ValidationError as exc:
        print(f"policyqa: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (IndexNotFoundError, IndexVersionError) as exc:
        print(f"policyqa {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"policyqa {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if not is_milvus_error(exc):
            raise
        print(f"policyqa {args.command}: {milvus_error_line(exc)}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("interrupted; the previous index is untouched", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
