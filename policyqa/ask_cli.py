"""The ``policyqa ask`` command: answer a question with the verbatim span and its sources.

``policyqa ask "问题" [--index DIR] [--top-k N] [--json] [--explain] [--reranker NAME]
[--issuer X] [--doc-type X] [--region X] [--date-from D] [--date-to D]``

The main CLI registers it with :func:`add_ask_parser` and runs it with :func:`run_ask_command`,
which returns the exit code: 0 answered (or honestly "not found"), 1 the index is missing or
unusable, 2 bad input (a one-line message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from policyqa.argtypes import positive_int as _positive_int
from policyqa.settings import Settings

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAIL", "add_ask_parser", "format_answer", "run_ask_command"]

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def add_ask_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``ask`` sub-command on an ``argparse`` subparsers object and return its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "ask",
        help="answer a question with the text span that answers it and numbered citations",
        description=(
            "Retrieve (hybrid), rerank, and return the span (clauses of a passage) that answers the "
            "question verbatim (or a date, amount, body or place for 何时/多少/哪个部门/哪里 questions), "
            "its confidence and numbered citations with character offsets. When the evidence is "
            "too weak it says so and lists the closest passages."
        ),
    )
    p.add_argument("question", help="the question, e.g. 稳岗返还的比例是多少？")
    p.add_argument(
        "--index",
        "--index-dir",
        dest="index",
        type=Path,
        default=None,
        help="index directory (default: the POLICYQA_INDEX_DIR setting)",
    )
    p.add_argument("--top-k", type=_positive_int, default=5, help="citations to list (default 5)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument(
        "--explain",
        action="store_true",
        help="show each passage's score breakdown (BM25, dense, fused and rerank ranks and scores)",
    )
    p.add_argument(
        "--reranker",
        choices=("sentence", "features", "none", "cross-encoder"),
        default=None,
        help="rerank stage (default: the POLICYQA_RERANKER setting, 'sentence')",
    )
    p.add_argument(
        "--issuer", action="append", default=[], help="only documents whose issuing body contains this"
    )
    p.add_argument("--doc-type", action="append", default=[], help="only documents of this type")
    p.add_argument("--region", action="append", default=[], help="only documents of this region")
    p.add_argument("--date-from", type=date.fromisoformat, default=None, help="YYYY-MM-DD, inclusive")
    p.add_argument("--date-to", type=date.fromisoformat, default=None, help="YYYY-MM-DD, inclusive")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _breakdown(hit: Any) -> str:
    parts = []
    for stage in ("bm25", "dense", "fused", "sentence", "rerank"):
        rank = hit.ranks.get(stage)
        score = hit.scores.get(stage)
        if rank is None and score is None:
            continue
        if stage == "sentence":  # a similarity, not a ranking of its own
            parts.append(f"best sentence {score:.4g}")
            continue
        r = f"#{rank}" if rank is not None else "#–"
        s = f" ({score:.4g})" if score is not None else ""
        parts.append(f"{stage} {r}{s}")
    return " · ".join(parts)


def format_answer(answer: Any, *, explain: bool = False, elapsed_ms: float | None = None) -> str:
    """The human-readable answer: text, confidence, numbered citations (and the breakdown)."""
    lines: list[str] = []
    took = f", {elapsed_ms:.0f} ms" if elapsed_ms is not None else ""
    if answer.no_answer:
        lines.append(f"未找到可靠答案 (no answer; confidence {answer.confidence:.2f}{took})")
        if answer.citations:
            lines.append("最接近的段落 (closest passages):")
    else:
        lines.append(f"答案: {answer.text}")
        lines.append(
            f"confidence {answer.confidence:.2f} · {answer.answer_type} · 出处 [{answer.citation}]{took}"
        )
        if answer.sentence and answer.sentence != answer.text:
            lines.append(f"原句: {answer.sentence}")
        lines.append(f"位置: doc {answer.doc_id} chars {answer.start}-{answer.end}")
        lines.append("")
        lines.append("引用 (citations):")
    by_chunk = {h.chunk_id: h for h in answer.passages}
    for c in answer.citations:
        lines.append(f"[{c.number}] {c.label()}")
        lines.append(f"    doc {c.doc_id} chars {c.start}-{c.end}")
        lines.append("    " + c.snippet.replace("\n", " "))
        if explain and c.chunk_id in by_chunk:
            lines.append("    scores: " + _breakdown(by_chunk[c.chunk_id]))
    return "\n".join(lines)


def _fail(message: str, code: int) -> int:
    print(f"policyqa ask: {message}", file=sys.stderr)
    return code


def run_ask_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``policyqa ask`` for parsed ``args``; returns the exit code."""
    from policyqa.answer.types import CitationError
    from policyqa.index.layout import IndexNotFoundError, IndexVersionError
    from policyqa.pipeline import open_index
    from policyqa.qa import QAPipeline
    from policyqa.retriever.base import Filters

    question = (args.question or "").strip()
    if not question:
        return _fail('the question is empty: e.g. policyqa ask "稳岗返还的比例是多少？"', EXIT_BAD_INPUT)
    if getattr(args, "index", None) is not None:
        settings = settings.model_copy(update={"index_dir": args.index})
    if getattr(args, "reranker", None):
        settings = settings.model_copy(update={"reranker": args.reranker})
    filters = Filters(
        issuer=tuple(getattr(args, "issuer", []) or ()),
        doc_type=tuple(getattr(args, "doc_type", []) or ()),
        region=tuple(getattr(args, "region", []) or ()),
        date_from=getattr(args, "date_from", None),
        date_to=getattr(args, "date_to", None),
    )
    try:
        index = open_index(settings.index_dir, settings)
    except (IndexNotFoundError, IndexVersionError) as exc:
        return _fail(f"{exc} (build one with `policyqa index`)", EXIT_FAIL)
    try:
        # models load first, so that the time shown is the question's own
        qa = QAPipeline(index, settings)
        qa.warm_up()
        t0 = time.perf_counter()
        answer = qa.ask(
            question,
            top_k=args.top_k,
            filters=None if filters.is_empty() else filters,
            explain=bool(args.explain),
        )
        elapsed = (time.perf_counter() - t0) * 1000.0
    except CitationError as exc:
        return _fail(f"internal error, citation check failed: {exc}", EXIT_FAIL)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    finally:
        index.close()
    if args.json:
        out = answer.to_dict(explain=bool(args.explain))
        out["elapsed_ms"] = round(elapsed, 1)
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer, explain=bool(args.explain), elapsed_ms=elapsed))
    return EXIT_OK
