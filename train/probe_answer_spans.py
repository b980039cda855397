"""How far the answer span model's choice can go: cross-validated probes on the train split.

``python -m policyqa.train.probe_answer_spans BENCH [--fold-readers A_0 … A_{N-1}] [--json OUT]
[--report OUT.md]``

The candidate spans of the benchmark's ``train``-split questions are collected as
``python -m policyqa.train.answer`` collects them (the reranked hybrid search, the top
passages, the span features, sentence similarities and reader logits; with ``--fold-readers``
each question reads a reader that never saw it, as the shipped model was fitted). The test
split is never looked at. Then, by k-fold cross-validation over those questions (each question
scored by boosters fitted without it, folds by :func:`~policyqa.train.rerank.fold_of`),
the F1 and ``contains`` of the chosen span are reported for:

- the **candidate oracle**: the best candidate of each question, the ceiling of any choice;
- the boosted model with the shipped settings (:data:`BOOSTED_PARAMS`, contains weight 0.3) and
  **variants** of its objective and settings;
- a **learning curve**: the shipped settings with 2, 4 and 8 folds (each model sees 1/2, 3/4 and
  7/8 of the questions), which says whether more training questions of the same kind would help;
- **minimum-Bayes-risk decoding**: instead of the best-scored span, the span with the highest
  expected F1 against the candidates under ``softmax(score / T)`` (character overlap of two
  spans of one document; spans of different documents count 0).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.answer.spans import expected_f1_choice
from policyqa.eval.report import module_command, write_probe_result
from policyqa.eval.splits import fold_of
from policyqa.train.answer import BOOSTED_PARAMS, SpanGroup, add_fold_readers_option, fit_boosters

__all__ = [
    "MBR_TEMPERATURES",
    "VARIANTS",
    "cross_validated_scores",
    "main",
    "top_span",
]

#: Settings compared with the shipped ones: (label, contains weight, LightGBM overrides).
VARIANTS: tuple[tuple[str, float, dict[str, Any]], ...] = (
    ("shipped", 0.3, {}),
    ("contains weight 0", 0.0, {}),
    ("contains weight 1", 1.0, {}),
    ("lambdarank truncation 1", 0.3, {"lambdarank_truncation_level": 1}),
    ("lambdarank truncation 20", 0.3, {"lambdarank_truncation_level": 20}),
    ("rank_xendcg objective", 0.3, {"objective": "rank_xendcg"}),
    ("300 trees, learning rate 0.03", 0.3, {"n_estimators": 300, "learning_rate": 0.03}),
    ("15 leaves, 20 per leaf", 0.3, {"num_leaves": 15, "min_data_in_leaf": 20}),
)
#: Softmax temperatures of the minimum-Bayes-risk choice.
MBR_TEMPERATURES: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
#: Fold counts of the learning curve.
CURVE_FOLDS: tuple[int, ...] = (2, 4, 8)

Choice = Callable[[SpanGroup, npt.NDArray[np.float64]], int]


def cross_validated_scores(
    groups: Sequence[SpanGroup],
    folds: int,
    *,
    lam: float = 0.3,
    params: Mapping[str, Any] | None = None,
    bags: int = 5,
) -> dict[str, npt.NDArray[np.float64]]:
    """Each question's candidate scores from boosters fitted on the other folds only."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    features = _feature_set(groups)
    out: dict[str, npt.NDArray[np.float64]] = {}
    for k in range(folds):
        held = [g for g in groups if fold_of(g.query_id, folds) == k and len(g.features)]
        rest = [g for g in groups if fold_of(g.query_id, folds) != k]
        if not held:
            continue
        boosters = fit_boosters(rest, features, lam=lam, params=dict(params or {}), bags=bags)
        for g in held:
            total = sum(np.asarray(b.predict(g.features, num_threads=1), dtype=np.float64) for b in boosters)
            out[g.query_id] = np.asarray(total, dtype=np.float64) / len(boosters)
    return out


def _feature_set(groups: Sequence[SpanGroup]) -> tuple[str, ...]:
    from policyqa.answer.selector import FEATURE_SETS

    widths = {g.features.shape[1] for g in groups if len(g.features)}
    sets = [f for f in FEATURE_SETS if {len(f)} == widths]
    if not sets:
        raise ValueError("the spans' feature rows match no feature set")
    return sets[-1]


def _argmax(_g: SpanGroup, s: npt.NDArray[np.float64]) -> int:
    return int(np.argmax(s))


def top_span(
    groups: Sequence[SpanGroup],
    scores: Mapping[str, npt.NDArray[np.float64]],
    choose: Choice = _argmax,
) -> dict[str, float]:
    """Mean F1 and ``contains`` of the chosen span over ``groups``; a question without
    candidates or scores counts 0."""
    f1: list[float] = []
    co: list[float] = []
    for g in groups:
        s = scores.get(g.query_id)
        if s is None or not len(g.features):
            f1.append(0.0)
            co.append(0.0)
            continue
        i = choose(g, s)
        f1.append(float(g.f1[i]))
        co.append(float(g.contains[i]))
    n = max(1, len(groups))
    return {"f1": round(sum(f1) / n, 4), "contains": round(sum(co) / n, 4)}


def _oracle(groups: Sequence[SpanGroup]) -> dict[str, float]:
    best = {g.query_id: g.f1 + 1e-6 * g.contains for g in groups if len(g.features)}
    return top_span(groups, best)


def probe(groups: Sequence[SpanGroup], *, bags: int = 5, show_progress: bool = False) -> dict[str, Any]:
    """Every probe of this module over ``groups`` (see the module docstring)."""
    from tqdm.auto import tqdm

    if any(len(g.features) and len(g.positions) != len(g.features) for g in groups):
        raise ValueError("every candidate needs its position (collect the groups with collect_spans)")
    steps = tqdm(total=len(VARIANTS) + len(CURVE_FOLDS) - 1, desc="probes", disable=not show_progress)
    variants: list[dict[str, Any]] = []
    shipped: dict[str, npt.NDArray[np.float64]] = {}
    for label, lam, over in VARIANTS:
        scores = cross_validated_scores(groups, 2, lam=lam, params=over, bags=bags)
        if label == "shipped":
            shipped = scores
        variants.append({"variant": label, "lam": lam, "params": over, **top_span(groups, scores)})
        steps.update()
    curve = [{"folds": 2, "train_share": 0.5, **top_span(groups, shipped)}]
    for k in CURVE_FOLDS[1:]:
        scores = cross_validated_scores(groups, k, bags=bags)
        curve.append({"folds": k, "train_share": round(1 - 1 / k, 3), **top_span(groups, scores)})
        steps.update()
    steps.close()
    mbr = [{"temperature": None, **top_span(groups, shipped)}]
    for t in MBR_TEMPERATURES:

        def choose(g: SpanGroup, s: npt.NDArray[np.float64], t: float = t) -> int:
            return expected_f1_choice(s, g.positions, t)

        mbr.append({"temperature": t, **top_span(groups, shipped, choose)})
    return {
        "questions": len(groups),
        "candidates_mean": round(float(np.mean([len(g.features) for g in groups])), 1) if groups else 0.0,
        "oracle": _oracle(groups),
        "variants": variants,
        "learning_curve": curve,
        "mbr": mbr,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.train.probe_answer_spans", description=__doc__)
    parser.add_argument("bench", type=Path, help="a benchmark with answers (BEIR + answers.jsonl, SQuAD)")
    parser.add_argument("--format", dest="bench_format", choices=("beir", "squad"), default=None)
    parser.add_argument("--train-share", type=float, default=0.5)
    add_fold_readers_option(
        parser,
        "out-of-sample reader logits, as policyqa.train.answer --fold-readers (without them the "
        "builtin reader reads the questions it was trained on)",
    )
    parser.add_argument("--bags", type=int, default=5, help="boosters per model (the shipped model: 5)")
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.bags < 1:
        parser.error("--bags must be at least 1")

    from policyqa.answer.selector import FEATURE_SETS
    from policyqa.eval.datasets import BenchmarkFormatError, load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.eval.splits import in_split
    from policyqa.settings import get_settings
    from policyqa.train.answer import check_fold_adapters, collect_spans, fold_reader

    if args.fold_readers is not None:
        try:
            check_fold_adapters(args.fold_readers, "train", args.train_share)
        except ValueError as exc:
            parser.error(str(exc))
    settings = get_settings()
    try:
        bench = load_benchmark(args.bench, args.bench_format)
    except (BenchmarkFormatError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    if not bench.answers:
        parser.exit(2, f"error: {bench.name} has no reference answers\n")
    started = time.perf_counter()
    prepared = prepare_index(bench, settings, None, show_progress=settings.progress)
    try:
        fold_readers = [fold_reader(settings, a) for a in args.fold_readers or []]
        groups = collect_spans(
            prepared.index,
            settings,
            {q: t for q, t in bench.queries.items() if in_split(q, "train", args.train_share)},
            {q: list(v) for q, v in bench.answers.items()},
            {q: list(v) for q, v in bench.answer_spans.items()},
            {q: {d for d, g in docs.items() if g > 0} for q, docs in bench.qrels.items()},
            show_progress=settings.progress,
            feature_set=FEATURE_SETS[-1],
            fold_readers=fold_readers,
        )
    finally:
        prepared.index.close()
    result: dict[str, Any] = {
        "benchmark": bench.name,
        "split": "train",
        "reader_logits": "fold readers (out-of-sample)" if args.fold_readers else "builtin reader",
        "shipped_params": BOOSTED_PARAMS,
        "bags": args.bags,
        **probe(groups, bags=args.bags, show_progress=settings.progress),
        "seconds": round(time.perf_counter() - started, 1),
        "command": module_command("policyqa.train.probe_answer_spans", argv),
    }
    write_probe_result(result, args.json_out, args.report, _report)
    return 0


def _report(result: Mapping[str, Any]) -> str:
    def row(label: str, r: Mapping[str, Any]) -> str:
        return f"| {label} | {r['f1']:.4f} | {r['contains']:.4f} |"

    lines = [
        f"# Answer span probes: {result['benchmark']} ({result['split']} split only)",
        "",
        f"```\n{result['command']}\n```",
        "",
        f"{result['questions']} questions of the {result['split']} split, "
        f"{result['candidates_mean']} candidate spans each on average; reader logits: "
        f"{result['reader_logits']}. F1 and contains of the chosen span, every question scored by "
        f"boosters ({result['bags']} per model) fitted without it; the test split is not used. "
        "See `policyqa/train/probe_answer_spans.py`.",
        "",
        "| choice | F1 | contains |",
        "|---|---:|---:|",
        row("candidate oracle (best candidate per question)", result["oracle"]),
        "",
        "**Settings** (2-fold cross-validation)",
        "",
        "| variant | F1 | contains |",
        "|---|---:|---:|",
        *(row(v["variant"], v) for v in result["variants"]),
        "",
        "**Learning curve** (shipped settings)",
        "",
        "| folds (share of questions each model sees) | F1 | contains |",
        "|---|---:|---:|",
        *(row(f"{c['folds']} ({c['train_share']:.0%})", c) for c in result["learning_curve"]),
        "",
        "**Minimum-Bayes-risk choice** (shipped settings, 2 folds)",
        "",
        "| temperature | F1 | contains |",
        "|---|---:|---:|",
        *(
            row("best-scored span" if m["temperature"] is None else f"{m['temperature']}", m)
            for m in result["mbr"]
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
