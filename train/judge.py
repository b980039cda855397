"""What every fitted number is judged by: the questions of each suite benchmark, split into the
half a probe or trainer may fit on and the half that judges it, and document-level MRR@10.

Used by the fusion probe, the rerank-weight probe and the cross-encoder trainer, so that all of
them split, score and choose the same way: fit on ``train`` halves, choose the value whose
*worst* benchmark gains most over the baseline (then the better mean gain), report ``test``
halves.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from policyqa.eval.datasets import Benchmark, load_benchmark
from policyqa.eval.runner import prepare_index
from policyqa.eval.splits import in_split, split_key
from policyqa.eval.suite import SuiteEntry, read_suite
from policyqa.index.base import OpenIndex
from policyqa.settings import Settings

__all__ = ["SuiteQuestion", "by_worst_margin", "doc_rr", "suite_questions"]

T = TypeVar("T")


def doc_rr(
    docs: Sequence[str], scores: Sequence[float] | npt.NDArray[np.float64], gold: Collection[str]
) -> float:
    """Reciprocal rank of the first gold document among the top 10 documents, each document
    ranked by its best-scoring candidate (ties: the earlier candidate first)."""
    order = np.lexsort((np.arange(len(docs)), -np.asarray(scores, dtype=np.float64)))
    seen: list[str] = []
    for i in order:
        d = docs[int(i)]
        if d in seen:
            continue
        seen.append(d)
        if d in gold:
            return 1.0 / len(seen)
        if len(seen) == 10:
            break
    return 0.0


@dataclass(frozen=True, slots=True)
class SuiteQuestion:
    """A question of a suite benchmark with gold documents, and the half it belongs to."""

    bench: str
    split: str
    qid: str
    query: str
    gold: tuple[str, ...]


def suite_questions(
    suite: str, data: Path | None, settings: Settings
) -> Iterator[tuple[Benchmark, SuiteEntry, OpenIndex, list[SuiteQuestion]]]:
    """Per benchmark of ``suite``: the benchmark, its entry, its index (open until the next one is
    asked for) and every question with a gold document, labelled ``train`` or ``test`` the way
    the suite's entry splits it (``split_by``, ``train_share``)."""
    for entry in read_suite(suite, data):
        bench = load_benchmark(entry.path, entry.format)
        index = prepare_index(bench, settings, show_progress=settings.progress).index
        try:
            questions = []
            for qid, query in bench.queries.items():
                gold = tuple(sorted(d for d, g in bench.qrels.get(qid, {}).items() if g > 0))
                if not gold:
                    continue
                key = split_key(bench, qid, entry.split_by)
                split = "train" if in_split(key, "train", entry.train_share) else "test"
                questions.append(SuiteQuestion(bench.name, split, qid, query, gold))
            yield bench, entry, index, questions
        finally:
            index.close()


def by_worst_margin(candidates: Sequence[T], margins: Callable[[T], Mapping[str, float]]) -> T:
    """The candidate whose worst benchmark margin (over a baseline, per benchmark) is largest;
    ties go to the better mean margin, then to the earlier candidate (list the simpler first)."""
    if not candidates:
        raise ValueError("no candidates to choose from")

    def key(item: tuple[int, T]) -> tuple[float, float, int]:
        m = [round(v, 9) for v in margins(item[1]).values()]  # float noise is not a difference
        return min(m), round(float(np.mean(m)), 9), -item[0]

    return max(enumerate(candidates), key=key)[1]
