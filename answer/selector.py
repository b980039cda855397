"""Extractive answers: the span that answers a question, verbatim, with character offsets into
its source document and numbered citations.

:class:`SpanSelector` enumerates candidate spans in the top reranked passages (contiguous runs
of clauses, kept inside the passage unless ``extend_chars`` lets them run on into the document
text; the same without the words the question repeats; and, for 何时/多少/哪个部门/哪里
questions, the date, amount, organisation or place inside a clause; see
:mod:`policyqa.answer.spans`) and scores them
with a linear model over interpretable features (question coverage of the span and of the text
just before it, length, sentence and list structure, question type, passage rank), trained
listwise on answer F1 and ``contains`` and shipped as ``answer/data/answer_spans.json``
(written by ``python -m policyqa.train.answer``).

By default the span is chosen by a **boosted** model instead
(``answer/data/answer_spans_boosted.json``, LightGBM lambdarank written by
``python -m policyqa.train.answer --kind boosted``) that also reads the evidence of
two neural signals over the top passages: each sentence's similarity to the question (the
sentence vectors the index embedded for the reranker) and the builtin QA reader's start and end
logits at the span's boundaries. It picks the answer itself; the sentence(s) shown around it are
those of the span the linear model prefers among the candidates that hold the answer. Without
a dense encoder, or with an encoder other than the one it was trained with, the linear model
answers alone.

Confidence is a logistic calibration of the best span's score and its margin over the
runner-up (fitted with the weights); below ``min_confidence`` the answer is ``no_answer`` and
the closest passages are still listed as citations.

Every answer satisfies ``document.text[answer.start:answer.end] == answer.text`` (checked by
:func:`verify_answer`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from policyqa.corpus.text import enclosing_sentence
from policyqa.index.base import DocumentStore, TermStatistics
from policyqa.index.dense import PassageEncoder
from policyqa.index.tokenizer import ChineseTokenizer
from policyqa.retriever.base import Hit
from policyqa.retriever.terms import QueryTerms, TermStats

from .question import expected_type, find_typed_spans
from .reader import CharLogits
from .spans import (
    DENSE_SPAN_FEATURES,
    EXTEND_CHARS,
    READER_SPAN_FEATURES,
    SPAN_FEATURES,
    SpanCandidate,
    dense_span_features,
    expected_f1_choice,
    reader_span_features,
    source_text,
    span_candidates,
)
from .types import Answer, AnswerType, citations_from_hits, no_answer

__all__ = [
    "BOOSTED_SPAN_MODEL",
    "DEFAULT_SPAN_MODEL",
    "FEATURE_SETS",
    "NARROW_INSIDE",
    "NarrowReader",
    "SentenceScorer",
    "SpanModel",
    "SpanReader",
    "SpanSelector",
]

logger = logging.getLogger(__name__)


class SentenceScorer(Protocol):
    """Per passage, its sentences (offsets into the passage) and their similarity to a question
    (the sentence reranker is one); a boosted span model reads them."""

    @property
    def encoder(self) -> PassageEncoder: ...

    def warm_up(self) -> None: ...

    def sentence_similarities(
        self, query: str, hits: Sequence[Hit]
    ) -> list[list[tuple[int, int, float]]]: ...


class SpanReader(Protocol):
    """A QA reader's per-character start and end logits (a boosted span model reads them)."""

    def warm_up(self) -> None: ...

    def char_logits(self, question: str, texts: Sequence[str]) -> list[CharLogits]: ...


class NarrowReader(Protocol):
    """A QA reader that narrows chosen sentence(s) to the answer inside them."""

    def warm_up(self) -> None: ...

    def best_span_within(
        self, question: str, text: str, lo: int, hi: int
    ) -> tuple[int, int, float] | None: ...


DEFAULT_SPAN_MODEL = "answer_spans.json"
#: The shipped boosted span model (sentence similarities and reader logits as features), used
#: when the selector has both and the index's encoder is the one it was trained with.
BOOSTED_SPAN_MODEL = "answer_spans_boosted.json"


#: The feature sets a span model may use, in column order: the span's own features, then
#: (a boosted model) sentence similarity and reader logits.
FEATURE_SETS: tuple[tuple[str, ...], ...] = (
    SPAN_FEATURES,
    SPAN_FEATURES + DENSE_SPAN_FEATURES,
    SPAN_FEATURES + READER_SPAN_FEATURES,
    SPAN_FEATURES + DENSE_SPAN_FEATURES + READER_SPAN_FEATURES,
)


@dataclass(slots=True)
class SpanModel:
    """Span scorer plus the logistic confidence calibration of the best span's score and its
    margin over the runner-up.

    Two kinds:

    - ``span-linear``: ``weights`` over standardised :data:`~policyqa.answer.spans.SPAN_FEATURES`
      pick the span whose sentence(s) hold the answer (fitted to F1 + contains, which favours
      complete clauses); the optional ``narrow_weights`` (same features, fitted to F1 alone)
      then pick the answer itself among the candidates inside those sentence(s).
    - ``span-boosted``: LightGBM lambdarank ``boosters`` (a bag; their scores are averaged)
      over ``features`` (the span features
      plus, by its training, sentence similarities and reader logits, see :data:`FEATURE_SETS`)
      picks the answer span directly. ``info["dense_model"]`` names the encoder whose sentence
      similarities it was trained on.
    """

    weights: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]
    calib: tuple[float, float, float]  # a * best + b * margin + c → sigmoid
    min_confidence: float
    info: dict[str, Any] = field(default_factory=dict)
    narrow_weights: npt.NDArray[np.float64] | None = None
    boosters: tuple[Any, ...] = ()
    features: tuple[str, ...] = SPAN_FEATURES

    @property
    def kind(self) -> str:
        return "span-boosted" if self.boosters else "span-linear"

    @property
    def uses_sentences(self) -> bool:
        return DENSE_SPAN_FEATURES[0] in self.features

    @property
    def uses_reader(self) -> bool:
        return READER_SPAN_FEATURES[0] in self.features

    def score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.boosters:
            total = sum(np.asarray(b.predict(x, num_threads=1), dtype=np.float64) for b in self.boosters)
            return np.asarray(total, dtype=np.float64) / len(self.boosters)
        out: npt.NDArray[np.float64] = ((x - self.mean) / self.std) @ self.weights
        return out

    def narrow_score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
        """Scores of the narrowing model, or None when the model has none."""
        if self.narrow_weights is None:
            return None
        out: npt.NDArray[np.float64] = ((x - self.mean) / self.std) @ self.narrow_weights
        return out

    def confidence(self, best: float, margin: float) -> float:
        a, b, c = self.calib
        z = a * best + b * margin + c
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_json(self) -> dict[str, Any]:
        common = {
            "calibration": [round(float(v), 6) for v in self.calib],
            "min_confidence": round(self.min_confidence, 4),
        }
        if self.boosters:
            return {
                "format": 1,
                "kind": "span-boosted",
                "features": list(self.features),
                "boosters": [b.model_to_string() for b in self.boosters],
                **common,
                "info": self.info,
            }
        return {
            "format": 1,
            "kind": "span-linear",
            "features": list(SPAN_FEATURES),
            "weights": [round(float(w), 6) for w in self.weights],
            "mean": [round(float(m), 6) for m in self.mean],
            "std": [round(float(s), 6) for s in self.std],
            **common,
            **(
                {"narrow_weights": [round(float(w), 6) for w in self.narrow_weights]}
                if self.narrow_weights is not None
                else {}
            ),
            "info": self.info,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpanModel:
        kind = data.get("kind")
        features = tuple(data.get("features") or ())
        calib = [float(v) for v in data.get("calibration") or ()]
        if len(calib) != 3:
            raise ValueError("answer span model: calibration needs three numbers")
        if data.get("format") == 1 and kind == "span-boosted" and features in FEATURE_SETS:
            import lightgbm

            boosters = tuple(lightgbm.Booster(model_str=str(m)) for m in data.get("boosters") or ())
            if not boosters or any(b.num_feature() != len(features) for b in boosters):
                raise ValueError("answer span model: the boosters' inputs must match its features")
            empty = np.zeros(0, dtype=np.float64)
            return cls(
                weights=empty,
                mean=empty,
                std=empty,
                calib=(calib[0], calib[1], calib[2]),
                min_confidence=float(data.get("min_confidence", 0.0)),
                info=dict(data.get("info") or {}),
                boosters=boosters,
                features=features,
            )
        if data.get("format") != 1 or kind != "span-linear" or features != SPAN_FEATURES:
            raise ValueError(
                "not a policyqa answer span model (format 1, span-linear or span-boosted, current features)"
            )
        w = np.asarray(data["weights"], dtype=np.float64)
        mean = np.asarray(data["mean"], dtype=np.float64)
        std = np.asarray(data["std"], dtype=np.float64)
        if not (w.size == mean.size == std.size == len(SPAN_FEATURES)):
            raise ValueError("answer span model: weights, mean and std must match the features")
        narrow = data.get("narrow_weights")
        narrow_w = None if narrow is None else np.asarray(narrow, dtype=np.float64)
        if narrow_w is not None and narrow_w.size != len(SPAN_FEATURES):
            raise ValueError("answer span model: narrow_weights must match the features")
        return cls(
            weights=w,
            mean=mean,
            std=np.where(std > 1e-12, std, 1.0),
            calib=(calib[0], calib[1], calib[2]),
            min_confidence=float(data.get("min_confidence", 0.0)),
            info=dict(data.get("info") or {}),
            narrow_weights=narrow_w,
        )

    @classmethod
    def load(cls, path: Path | None = None, *, name: str = DEFAULT_SPAN_MODEL) -> SpanModel:
        """The model in ``path``, else the shipped model ``name``."""
        if path is None:
            text = (resources.files("policyqa.answer") / "data" / name).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return cls.from_json(json.loads(text))


#: Question kinds whose answer is narrowed to the best typed expression inside the chosen span
#: when the model chose a longer span. Measured on the ncpqa-dev train split (mean of F1 and
#: contains): dates gain (F1 0.403 → 0.423, contains 0.658 → 0.655), amounts, organisations and
#: places lose (contains drops 3 points or more).
NARROW_INSIDE: frozenset[str] = frozenset({"date"})


class SpanSelector:
    """Picks the answer span among the top passages (see :mod:`policyqa.answer.spans`).

    :param tokenizer: the index's tokenizer (query terms); None: character bigrams only.
    :param bm25_index: the index's BM25 index (term IDFs).
    :param documents: the index's chunk store (``get_document(doc_id).text``), so that a span
        may run past the end of its passage; None keeps every span inside its passage.
    :param model_path: span model JSON; None: the shipped boosted model when ``sentences`` and
        ``span_reader`` are given and ``sentences`` embeds with the encoder that model was
        trained with (:data:`BOOSTED_SPAN_MODEL`), else the shipped linear one.
    :param passages: how many of the top passages are searched for the answer.
    :param min_confidence: below it the answer is "no answer"; None: the model's tuned value.
    :param narrow: allow typed answers (the date, amount, body or place inside a clause); False
        answers with the whole sentence(s) around the best span.
    :param extend_chars: how far past the end of its passage a span may run (needs
        ``documents``); the default 0 keeps every answer inside the passage it cites.
    :param narrow_reader: a QA reader (:class:`~policyqa.answer.reader.TransformersReader`)
        that, when set, narrows the chosen sentence(s) to the answer instead of the narrowing
        weights: it reads the chosen passage only and keeps its best span inside them.
    :param sentences: the sentence similarities of a boosted model
        (:meth:`~policyqa.retriever.rerank.SentenceReranker.sentence_similarities`, and its
        ``encoder.model_id``).
    :param span_reader: the QA reader whose per-character logits a boosted model reads
        (:meth:`~policyqa.answer.reader.TransformersReader.char_logits`).
    :param mbr_temperature: with a boosted model, answer with the minimum-Bayes-risk span (the
        candidate with the highest expected character F1 against the candidates weighted by
        ``softmax(score / T)``, :func:`~policyqa.answer.spans.expected_f1_choice`) instead of
        the best-scored one; None: the best-scored span. The confidence stays the best score's.
    """

    def __init__(
        self,
        tokenizer: ChineseTokenizer | None = None,
        bm25_index: TermStatistics | None = None,
        *,
        documents: DocumentStore | None = None,
        model_path: Path | None = None,
        passages: int = 5,
        min_confidence: float | None = None,
        narrow: bool = True,
        extend_chars: int = EXTEND_CHARS,
        narrow_reader: NarrowReader | None = None,
        sentences: SentenceScorer | None = None,
        span_reader: SpanReader | None = None,
        mbr_temperature: float | None = None,
    ) -> None:
        if passages < 1:
            raise ValueError(f"passages must be at least 1, got {passages}")
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if mbr_temperature is not None and not mbr_temperature > 0:
            raise ValueError(
                f"mbr_temperature must be positive (or None for the best-scored span), got {mbr_temperature}"
            )
        self.mbr_temperature = mbr_temperature
        self.tokenizer = tokenizer
        self.stats = TermStats(bm25_index)
        self.documents = documents
        self.model_path = model_path
        self.passages = passages
        self._min_confidence = min_confidence
        self.narrow = narrow
        self.extend_chars = max(0, extend_chars)
        self.narrow_reader = narrow_reader
        self.sentences = sentences
        self.span_reader = span_reader
        self._model: SpanModel | None = None
        #: with a boosted model: the linear model that picks the sentence(s) shown around the answer
        self._context: SpanModel | None = None

    def _load_model(self) -> SpanModel:
        if self.model_path is not None:
            model = SpanModel.load(self.model_path)
            if model.uses_sentences and self.sentences is None:
                raise ValueError(
                    f"span model {self.model_path} reads sentence similarities: the selector needs "
                    "the index's sentence scorer (an index with a dense encoder)"
                )
            if model.uses_reader and self.span_reader is None:
                raise ValueError(f"span model {self.model_path} reads reader logits: give it a span reader")
            return model
        if self.sentences is None or self.span_reader is None:
            return SpanModel.load()
        try:
            boosted = SpanModel.load(name=BOOSTED_SPAN_MODEL)
        except FileNotFoundError:
            logger.warning("answer spans: %s is not installed, using the linear model", BOOSTED_SPAN_MODEL)
            return SpanModel.load()
        wanted = boosted.info.get("dense_model")
        have = str(self.sentences.encoder.model_id)
        # the model part of ``<model>@<backend>…``: int8 ONNX and fp32 torch agree closely
        if wanted and have.split("@")[0] != str(wanted).split("@")[0]:
            logger.info(
                "answer spans: the linear model (the boosted one was trained on %s sentence "
                "similarities, this index embeds with %s)",
                wanted,
                have,
            )
            return SpanModel.load()
        return boosted

    def warm_up(self) -> None:
        if self._model is None:
            self._model = self._load_model()
            self._context = SpanModel.load() if self._model.boosters else None
            if self._model.uses_sentences and self.sentences is not None:
                self.sentences.warm_up()
            if self._model.uses_reader and self.span_reader is not None:
                self.span_reader.warm_up()
        if self.narrow_reader is not None:
            self.narrow_reader.warm_up()
        self.stats.idf("")
        warm = self.tokenizer.warm_up if self.tokenizer is not None else None
        if callable(warm):
            warm()

    @property
    def model(self) -> SpanModel:
        self.warm_up()
        assert self._model is not None  # set by warm_up
        return self._model

    @property
    def min_confidence(self) -> float:
        return self.model.min_confidence if self._min_confidence is None else self._min_confidence

    def _text_getter(self) -> Callable[[Hit], str]:
        cache: dict[str, str] = {}
        store = self.documents

        def text_of(hit: Hit) -> str:
            if store is None:
                return hit.text
            if hit.doc_id not in cache:
                doc = store.get_document(hit.doc_id)
                cache[hit.doc_id] = doc.text if doc is not None else hit.text
            return cache[hit.doc_id]

        return text_of

    def candidates(
        self, question: str, hits: Sequence[Hit], feature_set: tuple[str, ...] | None = None
    ) -> tuple[list[SpanCandidate], npt.NDArray[np.float64], Callable[[Hit], str]]:
        """Every candidate span of the top passages, its feature row (the columns of
        ``feature_set``, one of :data:`FEATURE_SETS`; None: the model's), and the document texts."""
        qt = QueryTerms.of(question, self.tokenizer, self.stats)
        top = list(hits)[: self.passages]
        text_of = self._text_getter()
        cands, x = span_candidates(
            question, qt, top, text_of, find_typed=find_typed_spans, extend_chars=self.extend_chars
        )
        if not self.narrow and cands:
            keep = [i for i, c in enumerate(cands) if c.kind != "typed"]
            cands = [cands[i] for i in keep]
            x = x[keep]
        wanted = self.model.features if feature_set is None else feature_set
        sentences = self.sentences if DENSE_SPAN_FEATURES[0] in wanted else None
        reader = self.span_reader if READER_SPAN_FEATURES[0] in wanted else None
        if DENSE_SPAN_FEATURES[0] in wanted and sentences is None:
            raise ValueError("these span features need sentence similarities: an index with a dense encoder")
        if READER_SPAN_FEATURES[0] in wanted and reader is None:
            raise ValueError("these span features need reader logits: give the selector a span reader")
        if not cands:
            return cands, np.zeros((0, len(wanted)), dtype=np.float64), text_of
        if sentences is not None:
            sims = sentences.sentence_similarities(question, top)
            x = np.hstack([x, dense_span_features(cands, top, sims)])
        if reader is not None:
            logits = reader.char_logits(question, [h.text for h in top])
            x = np.hstack([x, reader_span_features(cands, top, logits)])
        return cands, x, text_of

    def select(self, question: str, hits: Sequence[Hit]) -> Answer:
        """The answer from ``hits`` (reranked passages, best first), or no answer."""
        if not hits:
            return no_answer(question, hits)
        model = self.model
        cands, x, text_of = self.candidates(question, hits)
        if not cands:
            return no_answer(question, hits)
        scores = model.score(x)
        order = np.argsort(-scores, kind="stable")
        best = cands[int(order[0])]
        best_score = float(scores[order[0]])
        margin = best_score - float(scores[order[1]]) if len(order) > 1 else 1.0
        confidence = model.confidence(best_score, margin)
        if self.mbr_temperature is not None and model.boosters:
            positions = [(c.doc_id, c.start, c.end) for c in cands]
            best = cands[expected_f1_choice(scores, positions, self.mbr_temperature)]
        kind = expected_type(question)
        top = list(hits)[: self.passages]
        hit = top[best.hit_index]
        text, base = source_text(hit, text_of)  # ``base``: offset of ``text`` in the document
        if self._context is not None:
            # a boosted model picks the answer itself: the sentence(s) shown around it are those
            # of the span the linear model likes best among the candidates holding the answer
            ctx_scores = self._context.score(x[:, : len(SPAN_FEATURES)])
            holding = [
                i
                for i, c in enumerate(cands)
                if c.hit_index == best.hit_index and c.start <= best.start and best.end <= c.end
            ]
            wide = cands[max(holding, key=lambda i: float(ctx_scores[i]))]
            ss, se = enclosing_sentence(text, wide.start - base, wide.end - base)
        else:
            ss, se = enclosing_sentence(text, best.start - base, best.end - base)
        narrow_scores = model.narrow_score(x) if self.narrow else None
        read = None
        if self.narrow and self.narrow_reader is not None:
            lo = max(0, base + ss - hit.start)
            hi = min(len(hit.text), base + se - hit.start)
            read = self.narrow_reader.best_span_within(question, hit.text, lo, hi) if hi > lo else None
        if read is not None:
            best = SpanCandidate(
                best.hit_index, best.doc_id, hit.start + read[0], hit.start + read[1], "reader"
            )
        elif narrow_scores is not None:
            # the answer: the narrowing model's best candidate inside the chosen sentence(s)
            inside = [
                i
                for i, c in enumerate(cands)
                if c.hit_index == best.hit_index and base + ss <= c.start and c.end <= base + se
            ]
            if inside:
                best = cands[max(inside, key=lambda i: float(narrow_scores[i]))]
        elif self.narrow and not model.boosters and kind in NARROW_INSIDE and best.kind != "typed":
            inside = [
                i
                for i, c in enumerate(cands)
                if c.kind == "typed"
                and c.hit_index == best.hit_index
                and best.start <= c.start
                and c.end <= best.end
            ]
            if inside:
                best = cands[max(inside, key=lambda i: float(scores[i]))]
        focus = {hit.chunk_id: (max(0, best.start - hit.start), max(0, min(best.end, hit.end) - hit.start))}
        citations = citations_from_hits(list(hits), focus)
        if confidence < self.min_confidence:
            return no_answer(question, hits, confidence, citations)
        s, e = best.start - base, best.end - base
        if not (ss <= s and e <= se):
            ss, se = enclosing_sentence(text, s, e)
        a_type: AnswerType = (
            kind if best.kind == "typed" else "reader" if best.kind == "reader" else "sentence"
        )
        if not self.narrow:
            s, e = ss, se
        return Answer(
            question=question,
            text=text[s:e],
            no_answer=False,
            confidence=confidence,
            doc_id=hit.doc_id,
            chunk_id=hit.chunk_id,
            start=base + s,
            end=base + e,
            sentence=text[ss:se],
            sentence_start=base + ss,
            sentence_end=base + se,
            answer_type=a_type,
            citation=best.hit_index + 1,
            citations=tuple(citations),
            passages=tuple(hits),
        )
