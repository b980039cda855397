"""The registry of systems the benchmark can run.

A system is a name bound to a factory. Given a :class:`SystemContext` (the opened index, the
settings and the search depth) the factory returns a callable that takes a query and returns

* for a **retrieval** system: ``list[Hit]``, best first;
* for an **answer** system: an object with ``.text``, ``.doc_id``, ``.start``, ``.end`` and
  ``.no_answer`` (see :class:`policyqa.eval.metrics.AnswerLike`).

The registry holds:

``bm25``, ``dense``, ``hybrid``
    The retriever of that mode (:func:`policyqa.retriever.factory.retriever_for`).
``rerank``
    The hybrid retriever's top ``settings.rerank_candidates`` re-ordered by the reranker named by
    ``settings.reranker`` (default: the sentence reranker); the rest of the hybrid list follows
    unchanged, so recall@100 is the hybrid's and only the head of the ranking moves.
``rerank-sentence``, ``rerank-features``, ``rerank-cross-encoder``
    The same with that reranker whatever ``settings.reranker`` says (``rerank-cross-encoder``
    runs ``settings.rerank_model``, the built-in cross-encoder when unset), so one run sets the
    rerankers side by side.
``answer``
    :meth:`policyqa.qa.QAPipeline.ask`: reranked passages → the answer (sentence, or the date /
    amount / body / place inside it), with its citation offsets checked against the document.
``answer-sentence``
    The same with narrowing switched off: the answer is always the whole sentence(s).

Every system runs through the one :class:`~policyqa.qa.QAPipeline` the CLI and the service use.
:func:`register_system` adds one (``replace=True`` re-registers a name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policyqa.eval.metrics import AnswerLike
from policyqa.index.base import OpenIndex
from policyqa.qa import QAPipeline
from policyqa.retriever.base import Hit
from policyqa.retriever.factory import retriever_for
from policyqa.settings import RERANKERS, Settings

__all__ = [
    "AnswerFn",
    "RetrieveFn",
    "SystemContext",
    "SystemKind",
    "SystemNotAvailableError",
    "SystemSpec",
    "UnknownSystemError",
    "available_systems",
    "default_systems",
    "known_systems",
    "register_system",
    "resolve_systems",
]

SystemKind = Literal["retrieval", "answer"]
RetrieveFn = Callable[[str], list[Hit]]
AnswerFn = Callable[[str], AnswerLike]


class UnknownSystemError(ValueError):
    """A system name nobody registered."""


class SystemNotAvailableError(ValueError):
    """A known system that has no implementation yet."""


@dataclass(frozen=True, slots=True)
class SystemContext:
    """What a system factory may use: the opened index, the settings, and how many hits to ask for."""

    index: OpenIndex
    settings: Settings
    depth: int


@dataclass(frozen=True, slots=True)
class SystemSpec:
    """A registered system. ``factory`` is None while the system is not available."""

    name: str
    kind: SystemKind
    factory: Callable[[SystemContext], Callable[[str], Any]] | None
    description: str = ""
    #: run when no system is named (the per-reranker variants are not: they are asked for)
    default: bool = True

    @property
    def available(self) -> bool:
        return self.factory is not None

    def build_retrieval(self, context: SystemContext) -> RetrieveFn:
        """The query → hits callable of a retrieval system."""
        if self.kind != "retrieval":
            raise TypeError(f"system {self.name!r} is an {self.kind} system")
        fn: RetrieveFn = self._build(context)
        return fn

    def build_answer(self, context: SystemContext) -> AnswerFn:
        """The query → answer callable of an answer system."""
        if self.kind != "answer":
            raise TypeError(f"system {self.name!r} is a {self.kind} system")
        fn: AnswerFn = self._build(context)
        return fn

    def _build(self, context: SystemContext) -> Callable[[str], Any]:
        if self.factory is None:
            raise SystemNotAvailableError(f"system {self.name!r} is not available yet")
        return self.factory(context)


_REGISTRY: dict[str, SystemSpec] = {}


def register_system(
    name: str,
    kind: SystemKind,
    factory: Callable[[SystemContext], Callable[[str], Any]] | None,
    description: str = "",
    *,
    replace: bool = False,
    default: bool = True,
) -> SystemSpec:
    """Register (or, with ``replace=True``, re-register) a system under ``name``."""
    key = name.strip().lower()
    if not key or "," in key:
        raise ValueError(f"invalid system name {name!r}")
    if kind not in ("retrieval", "answer"):
        raise ValueError(f"system kind must be 'retrieval' or 'answer', got {kind!r}")
    if key in _REGISTRY and not replace:
        raise ValueError(f"system {key!r} is already registered")
    spec = SystemSpec(name=key, kind=kind, factory=factory, description=description, default=default)
    _REGISTRY[key] = spec
    return spec


def known_systems() -> list[str]:
    """Every registered name, available or not, in registration order."""
    return list(_REGISTRY)


def available_systems() -> list[str]:
    """The registered names that can run now."""
    return [name for name, spec in _REGISTRY.items() if spec.available]


def default_systems() -> list[str]:
    """What runs when no system is named: the available ones, less the per-reranker variants."""
    return [name for name, spec in _REGISTRY.items() if spec.available and spec.default]


def resolve_systems(names: Sequence[str]) -> list[SystemSpec]:
    """The specs of ``names`` (duplicates dropped, order kept).

    :raises UnknownSystemError: a name is not registered.
    :raises SystemNotAvailableError: a name is registered but not implemented yet.
    """
    specs: list[SystemSpec] = []
    for raw in names:
        name = raw.strip().lower()
        if not name or any(s.name == name for s in specs):
            continue
        spec = _REGISTRY.get(name)
        if spec is None:
            raise UnknownSystemError(f"unknown system {name!r}: choose from {', '.join(known_systems())}")
        if not spec.available:
            raise SystemNotAvailableError(f"system {name!r} is not available yet")
        specs.append(spec)
    if not specs:
        raise UnknownSystemError(f"no system given: choose from {', '.join(available_systems())}")
    return specs


def _index_retriever(kind: str) -> Callable[[SystemContext], RetrieveFn]:
    def factory(context: SystemContext) -> RetrieveFn:
        retriever = retriever_for(context.index, kind)
        depth = context.depth

        def search(query: str) -> list[Hit]:
            hits: list[Hit] = retriever.search(query, top_k=depth)
            return hits

        return search

    return factory


def _reranked(context: SystemContext) -> RetrieveFn:
    qa = QAPipeline(context.index, context.settings)
    qa.reranker.warm_up()
    depth = context.depth

    def search(query: str) -> list[Hit]:
        return qa.reranked(query, top_k=depth)

    return search


def _reranked_by(kind: str) -> Callable[[SystemContext], RetrieveFn]:
    def factory(context: SystemContext) -> RetrieveFn:
        settings = context.settings.model_copy(update={"reranker": kind})
        return _reranked(SystemContext(context.index, settings, context.depth))

    return factory


def _answers(narrow: bool | None) -> Callable[[SystemContext], AnswerFn]:
    def factory(context: SystemContext) -> AnswerFn:
        settings = context.settings
        if narrow is not None:
            settings = settings.model_copy(update={"answer_narrow": narrow})
        qa = QAPipeline(context.index, settings)
        qa.warm_up()

        def answer(question: str) -> AnswerLike:
            return qa.ask(question)

        return answer

    return factory


register_system("bm25", "retrieval", _index_retriever("bm25"), "BM25 over jieba tokens")
register_system("dense", "retrieval", _index_retriever("dense"), "dense embeddings, exact inner product")
register_system("hybrid", "retrieval", _index_retriever("hybrid"), "BM25 + dense, fused (settings.fusion)")
register_system(
    "rerank",
    "retrieval",
    _reranked,
    "hybrid top candidates re-ranked (settings.reranker: sentence | features | cross-encoder | none)",
)
register_system(
    "answer", "answer", _answers(None), "extractive answer (sentence or typed span) with citations"
)
register_system("answer-sentence", "answer", _answers(False), "extractive answer, always the whole sentence")
for _kind in (k for k in RERANKERS if k != "none"):
    register_system(
        f"rerank-{_kind}",
        "retrieval",
        _reranked_by(_kind),
        f"hybrid top candidates re-ranked by '{_kind}'",
        default=False,
    )
