"""Several benchmarks in one run: a suite file, one table of benchmark × system, and the stage check.

A suite is a TOML file (``eval/suites/dev.toml`` is the built-in one, named ``dev``)::

    data = "../../../shared/data"      # relative to the suite file; --data overrides
    [[benchmark]]
    path = "bench/msgabench-dev"      # relative to data
    split = "test"                     # train | test | all (default all)
    split_by = "gold"                  # query | gold (default query), see policyqa.eval.splits
    level = "doc"                      # optional; format, train_share, limit, name likewise
    answer_limit = 300                 # answer systems read the first 300 questions only

:func:`suite_table` puts every benchmark's results side by side (MRR@10 of each retrieval system,
F1 and contains of the answers) with a last row holding each column's worst value: defaults are
picked by the worst benchmark, not the average. :func:`stage_drops` lists every benchmark where a
stage scores below the stage before it (hybrid below the better of BM25 and dense, rerank below
hybrid): each one is a bug to fix, not a trade-off.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast, get_args

from policyqa.eval.datasets import Benchmark, BenchmarkFormat, load_benchmark
from policyqa.eval.report import markdown_report, md_table, plain_table
from policyqa.eval.runner import EvalResult, Level
from policyqa.eval.splits import SPLIT_BY, SPLITS, SplitBy, split_benchmark
from policyqa.settings import RERANKERS

__all__ = [
    "STAGES",
    "SUITE_METRIC",
    "StageDrop",
    "SuiteEntry",
    "SuiteError",
    "builtin_suites",
    "dump_json",
    "format_suite",
    "load_entry",
    "read_suite",
    "stage_drops",
    "suite_json",
    "suite_markdown",
    "suite_table",
]

#: The retrieval metric the suite table and the stage check use.
SUITE_METRIC = "mrr@10"
#: Each stage and the stages it must not score below (the better of them).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hybrid", ("bm25", "dense")),
    ("rerank", ("hybrid",)),
    *((f"rerank-{kind}", ("hybrid",)) for kind in RERANKERS if kind != "none"),
)
_ENTRY_KEYS = {"path", "name", "format", "level", "split", "split_by", "train_share", "limit", "answer_limit"}


class SuiteError(ValueError):
    """A suite file or entry that cannot be used (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class SuiteEntry:
    """One benchmark of a suite: where it is and which part of it is scored."""

    path: Path
    format: BenchmarkFormat | None = None
    level: Level = "doc"
    split: str = "all"
    split_by: SplitBy = "query"
    train_share: float = 0.5
    limit: int | None = None
    answer_limit: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise SuiteError(f"{self.path}: split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.split_by not in SPLIT_BY:
            raise SuiteError(
                f"{self.path}: split_by must be one of {', '.join(SPLIT_BY)}, got {self.split_by!r}"
            )
        if self.level not in get_args(Level):
            raise SuiteError(f"{self.path}: level must be doc or chunk, got {self.level!r}")
        if self.format is not None and self.format not in get_args(BenchmarkFormat):
            raise SuiteError(f"{self.path}: format must be beir or squad, got {self.format!r}")
        if not 0.0 < self.train_share < 1.0:
            raise SuiteError(f"{self.path}: train_share must be between 0 and 1, got {self.train_share}")
        for key, value in (("limit", self.limit), ("answer_limit", self.answer_limit)):
            if value is not None and value < 1:
                raise SuiteError(f"{self.path}: {key} must be at least 1, got {value}")


def builtin_suites() -> list[str]:
    """The names of the suites shipped in ``eval/suites``."""
    folder = resources.files("policyqa.eval").joinpath("suites")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def _suite_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    found = resources.files("policyqa.eval").joinpath("suites", f"{p.name}.toml")
    if not found.is_file():
        known = ", ".join(builtin_suites()) or "none"
        raise SuiteError(f"no suite {str(name_or_path)!r}: give a .toml file or a built-in name ({known})")
    return Path(str(found))


def read_suite(name_or_path: str | Path, data: Path | None = None) -> list[SuiteEntry]:
    """The entries of a suite file (a path, or a built-in name such as ``dev``); benchmark paths
    are resolved against ``data``, else the file's ``data`` key (relative to the file)."""
    path = _suite_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SuiteError(f"suite file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SuiteError(f"{path}: not a readable TOML suite ({exc})") from exc
    benchmarks = raw.get("benchmark")
    if not isinstance(benchmarks, list) or not benchmarks:
        raise SuiteError(f"{path}: a suite lists its benchmarks as [[benchmark]] tables, found none")
    root = data if data is not None else (path.parent / str(raw.get("data", "."))).resolve()
    entries: list[SuiteEntry] = []
    for i, item in enumerate(benchmarks, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise SuiteError(f"{path}: benchmark {i} needs a path (a string)")
        unknown = sorted(set(item) - _ENTRY_KEYS)
        if unknown:
            raise SuiteError(
                f"{path}: benchmark {i} has unknown keys {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_ENTRY_KEYS))})"
            )
        fields: dict[str, Any] = {k: v for k, v in item.items() if k != "path"}
        entries.append(SuiteEntry(path=root / item["path"], **fields))
    return entries


def load_entry(entry: SuiteEntry) -> Benchmark:
    """The benchmark of one entry, cut to its split and limit."""
    bench = load_benchmark(entry.path, entry.format)
    bench = split_benchmark(bench, entry.split, entry.split_by, entry.train_share)
    if entry.name:
        bench.corpus_name = bench.corpus_name or bench.name
        bench.name = entry.name
    return bench.limited(entry.limit)


@dataclass(frozen=True, slots=True)
class StageDrop:
    """A benchmark where ``stage`` scored below the best of the stages before it."""

    benchmark: str
    stage: str
    score: float
    before: str
    before_score: float

    def __str__(self) -> str:
        return (
            f"{self.benchmark}: {self.stage} {self.score:.4f} < {self.before} {self.before_score:.4f} "
            f"({SUITE_METRIC}, {self.score - self.before_score:+.4f})"
        )


def _metric(result: EvalResult, system: str, metric: str = SUITE_METRIC) -> float | None:
    found = result.systems.get(system)
    if found is None or metric not in found.metrics:
        return None
    return round(found.metrics[metric], 4)


def stage_drops(results: Sequence[EvalResult]) -> list[StageDrop]:
    """Every (benchmark, stage) whose score is below the better of the stages before it."""
    drops: list[StageDrop] = []
    for result in results:
        for stage, before in STAGES:
            score = _metric(result, stage)
            earlier = [(b, s) for b in before if (s := _metric(result, b)) is not None]
            if score is None or not earlier:
                continue
            best_name, best = max(earlier, key=lambda item: item[1])
            if score < best:
                drops.append(StageDrop(result.benchmark.name, stage, score, best_name, best))
    return drops


def _columns(results: Sequence[EvalResult]) -> tuple[list[str], list[str]]:
    retrieval: list[str] = []
    answer: list[str] = []
    for result in results:
        for name, system in result.systems.items():
            target = retrieval if system.kind == "retrieval" else answer
            if name not in target and system.metrics:
                target.append(name)
    return retrieval, answer


def suite_table(results: Sequence[EvalResult]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per benchmark (MRR@10 per retrieval system, F1 / contains per
    answer system), then the worst value of each column."""
    retrieval, answer = _columns(results)
    header = ["benchmark", "queries", *retrieval]
    for name in answer:
        header += [f"{name} F1", f"{name} contains"]
    columns: list[list[float | None]] = []
    rows: list[list[str]] = []
    for result in results:
        values: list[float | None] = [_metric(result, s) for s in retrieval]
        for name in answer:
            values += [_metric(result, name, "f1"), _metric(result, name, "contains")]
        columns.append(values)
        rows.append(
            [
                result.benchmark.name,
                str(len(result.benchmark.queries)),
                *("—" if v is None else f"{v:.4f}" for v in values),
            ]
        )
    if len(results) > 1:
        worst: list[str] = []
        for i in range(len(columns[0]) if columns else 0):
            present = [c[i] for c in columns if c[i] is not None]
            worst.append(f"{min(cast(list[float], present)):.4f}" if present else "—")
        rows.append(["worst", "", *worst])
    return header, rows


def _drop_lines(drops: Sequence[StageDrop]) -> list[str]:
    if not drops:
        return ["stage check: every stage scores at least the stage before it on every benchmark"]
    return [f"STAGE DROP {d}" for d in drops]


def format_suite(results: Sequence[EvalResult]) -> str:
    """The console summary of a suite run: the table and the stage check."""
    header, rows = suite_table(results)
    return "\n\n".join(
        [
            f"suite: {len(results)} benchmarks, {SUITE_METRIC} (answers: F1, contains)",
            plain_table(header, rows),
        ]
        + ["\n".join(_drop_lines(stage_drops(results)))]
    )


def suite_markdown(results: Sequence[EvalResult], *, command: str = "") -> str:
    """The Markdown report of a suite run: the table, the stage check, then each benchmark's report."""
    header, rows = suite_table(results)
    out = ["# policyqa eval: suite", ""]
    if command:
        out += ["```", command, "```", ""]
    out += [
        f"{SUITE_METRIC} per benchmark and retrieval system (document level unless the benchmark's "
        "report says otherwise); answers as character F1 and contains. The last row is each "
        "column's worst value.",
        "",
        md_table(header, rows),
        "",
        *(f"- {line}" for line in _drop_lines(stage_drops(results))),
        "",
    ]
    for result in results:
        section = markdown_report(result).replace("# policyqa eval:", "## Benchmark:", 1)
        out.append(section.replace("\n## ", "\n### ").rstrip())
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def suite_json(results: Sequence[EvalResult], *, command: str = "", wall_s: float = 0.0) -> dict[str, Any]:
    """The committed JSON of a suite run: the table, the stage drops and every benchmark's results."""
    header, rows = suite_table(results)
    drops = stage_drops(results)
    return {
        "command": command,
        "wall_s": round(wall_s, 1),
        "metric": SUITE_METRIC,
        "table": {"header": header, "rows": rows},
        "stage_drops": [
            {
                "benchmark": d.benchmark,
                "stage": d.stage,
                "score": d.score,
                "before": d.before,
                "before_score": d.before_score,
            }
            for d in drops
        ],
        "benchmarks": [r.to_json() for r in results],
    }


def dump_json(data: Mapping[str, Any], path: Path) -> None:
    """Write ``data`` as indented UTF-8 JSON (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
