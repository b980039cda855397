"""policyqa.eval: the benchmark suite behind ``policyqa eval``.

Load a benchmark (:func:`load_benchmark`), run systems on it (:func:`run_benchmark`), report
(:func:`markdown_report`, :func:`write_plot`). Metrics live in :mod:`policyqa.eval.metrics`,
the system registry in :mod:`policyqa.eval.systems`.
"""

from policyqa.eval.datasets import Benchmark, BenchmarkFormatError, load_beir, load_benchmark, load_squad
from policyqa.eval.metrics import (
    AnswerLike,
    answer_metrics,
    char_f1,
    contains_answer,
    exact_match,
    normalize_answer,
    retrieval_metrics,
)
from policyqa.eval.runner import EvalError, EvalResult, evaluate_systems, prepare_index, run_benchmark
from policyqa.eval.systems import (
    SystemContext,
    SystemNotAvailableError,
    UnknownSystemError,
    available_systems,
    register_system,
)

__all__ = [
    "AnswerLike",
    "Benchmark",
    "BenchmarkFormatError",
    "EvalError",
    "EvalResult",
    "SystemContext",
    "SystemNotAvailableError",
    "UnknownSystemError",
    "answer_metrics",
    "available_systems",
    "char_f1",
    "contains_answer",
    "evaluate_systems",
    "exact_match",
    "load_beir",
    "load_benchmark",
    "load_squad",
    "normalize_answer",
    "prepare_index",
    "register_system",
    "retrieval_metrics",
    "run_benchmark",
]
