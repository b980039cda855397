"""The answer stage: reranked passages → the span that answers the question, verbatim.

- :mod:`~policyqa.answer.types`: :class:`Answer`, :class:`Citation`, :func:`verify_answer`;
- :mod:`~policyqa.answer.question`: what a question asks for (a date, an amount, a body, a
  place) and where such expressions are in a text;
- :mod:`~policyqa.answer.spans`: the candidate spans and their features;
- :mod:`~policyqa.answer.selector`: :class:`SpanSelector`, the learned span model that picks the
  answer (the default answerer);
- :mod:`~policyqa.answer.reader`: a transformers QA reader (the built-in one, or any local
  model), which the selector reads or which replaces it;
- :mod:`~policyqa.answer.lora`: the built-in reader's shipped LoRA adapter.
"""

from .selector import SpanModel, SpanSelector
from .types import Answer, AnswerType, Citation, CitationError, citations_from_hits, no_answer, verify_answer

__all__ = [
    "Answer",
    "AnswerType",
    "Citation",
    "CitationError",
    "SpanModel",
    "SpanSelector",
    "citations_from_hits",
    "no_answer",
    "verify_answer",
]
