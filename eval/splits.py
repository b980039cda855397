"""How a benchmark's questions are split, so that nothing is scored on what it was fitted on.

:func:`in_split` puts a key in ``train`` or ``test`` by a sha1 of it (about half each by
default); :func:`fold_of` gives it a cross-fitting fold from other bits of the same hash. The key
is the question's id, or with ``by="gold"`` its gold passage (:func:`split_key`), so that no
passage, and no paraphrase of one question about it, is on both sides: a model fitted on
``train`` is then judged on passages it never saw. :func:`split_benchmark` keeps one split of a
benchmark (the corpus stays whole).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Literal

from policyqa.eval.datasets import Benchmark

__all__ = ["SPLITS", "SPLIT_BY", "SplitBy", "fold_of", "in_split", "split_benchmark", "split_key"]

#: The splits a benchmark can be cut to.
SPLITS: tuple[str, ...] = ("train", "test", "all")
#: What a question is split by: its own id, or its gold passage.
SplitBy = Literal["query", "gold"]
SPLIT_BY: tuple[str, ...] = ("query", "gold")


def in_split(key: str, split: str, train_share: float = 0.5) -> bool:
    """Whether a question (by its split key) belongs to ``split`` (train/test by a sha1, or all)."""
    if split == "all":
        return True
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    is_train = bucket < train_share
    if split == "train":
        return is_train
    if split == "test":
        return not is_train
    raise ValueError(f"split must be train, test or all, got {split!r}")


def fold_of(query_id: str, folds: int) -> int:
    """A question's cross-fitting fold in ``0 … folds-1`` (from other bits of the sha1 than
    :func:`in_split`, so every fold holds train and test questions alike)."""
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    return int(hashlib.sha1(query_id.encode("utf-8")).hexdigest()[8:16], 16) % folds


def split_key(bench: Benchmark, query_id: str, by: SplitBy = "query") -> str:
    """What question ``query_id`` is split by: its id, or (``by="gold"``) the smallest id of its
    relevant documents (its own id when it has none)."""
    if by == "query":
        return query_id
    if by != "gold":
        raise ValueError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {by!r}")
    gold = sorted(d for d, grade in bench.qrels.get(query_id, {}).items() if grade > 0)
    return gold[0] if gold else query_id


def split_benchmark(
    bench: Benchmark, split: str, by: SplitBy = "query", train_share: float = 0.5
) -> Benchmark:
    """The benchmark with only the questions of ``split`` (the corpus is kept whole)."""
    if split == "all":
        return bench
    keep = [q for q in bench.queries if in_split(split_key(bench, q, by), split, train_share)]
    kept = set(keep)
    suffix = split if by == "query" else f"{split}-by-gold"
    return replace(
        bench,
        name=f"{bench.name}-{suffix}",
        corpus_name=bench.corpus_name or bench.name,
        queries={q: bench.queries[q] for q in keep},
        qrels={q: bench.qrels[q] for q in keep if q in bench.qrels},
        answers={q: v for q, v in bench.answers.items() if q in kept},
        answer_spans={q: v for q, v in bench.answer_spans.items() if q in kept},
        no_answer={q for q in bench.no_answer if q in kept},
        notes=[
            *bench.notes,
            f"only the '{split}' split (sha1 of the question's {'id' if by == 'query' else 'gold passage'}, "
            f"train share {train_share})",
        ],
    )
