"""Optional transformers question-answering reader (replaces the sentence selector).

Any local ``*ForQuestionAnswering`` model directory works, e.g. a Chinese MacBERT or RoBERTa
fine-tuned on CMRC 2018 / DuReader-robust. Select it with ``POLICYQA_ANSWER_READER=/path``;
``POLICYQA_ANSWER_READER=builtin`` selects the shipped reader (multilingual-e5-small with a LoRA
adapter, see :mod:`policyqa.answer.lora`), built into the cache on first use.

Each of the top passages is read in windows of ``max_seq_length`` tokens (``stride`` tokens of
overlap); a question longer than ``max_question_tokens`` tokens is read by its last
``max_question_tokens`` tokens (where a question asks what it asks), so every window keeps more
than ``stride`` tokens of passage whatever the question's length. The best span of at most ``max_answer_tokens`` tokens over all windows wins. Its
score is ``start_logit + end_logit``; the window's no-answer score is the same at the ``[CLS]``
position. The confidence is ``sigmoid(best span score - no-answer score of its window)``. The
answer's character offsets come from the tokenizer's offset mapping, so the text is the
passage's own characters.

``backend``: ``"torch"`` runs the transformers model; ``"onnx"`` / ``"onnx-int8"`` run its ONNX
export (fp32, or dynamic int8 with the FFN output projections kept fp32) with onnxruntime, exported
once next to the model (or under ``cache_dir``) and checked against torch
(:func:`policyqa.index.onnx_export.ensure_onnx` with ``head="qa"``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.corpus.text import split_sentences, strip_span
from policyqa.retriever.base import Hit
from policyqa.settings import EncoderBackend

from .lora import BUILTIN_READER, ensure_builtin_reader
from .types import Answer, citations_from_hits, no_answer

__all__ = ["MAX_QUESTION_TOKENS", "CharLogits", "TransformersReader"]

logger = logging.getLogger(__name__)

#: Question tokens a window holds at most (unless ``max_seq_length - stride`` leaves less room).
MAX_QUESTION_TOKENS = 128
#: Room kept in a window for the special tokens around question and passage (``<s> q </s></s> p
#: </s>`` takes 4; BERT's ``[CLS] q [SEP] p [SEP]`` 3).
_SPECIAL_TOKENS = 4


@dataclass(slots=True)
class CharLogits:
    """A passage as the reader sees it: per character, the start and end logit of the token
    that holds it, and the passage's no-answer score."""

    start: npt.NDArray[np.float32]
    end: npt.NDArray[np.float32]
    null: float


def _tuned_threshold(model_dir: Path) -> float:
    """The no-answer threshold a policyqa-trained reader ships with, else 0.5."""
    meta = model_dir / "policyqa_reader.json"
    if meta.is_file():
        value = json.loads(meta.read_text(encoding="utf-8")).get("min_confidence")
        if isinstance(value, int | float) and 0.0 <= value <= 1.0:
            return float(value)
    return 0.5


class TransformersReader:
    """Extractive QA with a transformers model loaded from a local path.

    :param model: directory of a ``*ForQuestionAnswering`` model and its (fast) tokenizer, or
        ``"builtin"`` for the shipped reader (merged into ``cache_dir`` by :meth:`warm_up`).
    :param passages: how many of the top passages are read.
    :param min_confidence: below it the result is "no answer" (None: the threshold the model was
        tuned with, from its ``policyqa_reader.json``, else 0.5).
    :param backend: ``"torch"``, ``"onnx"`` or ``"onnx-int8"`` (see the module docstring).
    :param max_question_tokens: a longer question is read by its last so many tokens (default:
        :data:`MAX_QUESTION_TOKENS`, or less when the window leaves less room beside the stride).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        passages: int = 5,
        min_confidence: float | None = None,
        max_seq_length: int = 384,
        stride: int = 128,
        max_question_tokens: int | None = None,
        max_answer_tokens: int = 64,
        batch_size: int = 8,
        device: str = "cpu",
        cache_dir: Path | None = None,
        backend: EncoderBackend | str = EncoderBackend.TORCH,
    ) -> None:
        try:
            self.backend = EncoderBackend(backend)
        except ValueError:
            choices = ", ".join(b.value for b in EncoderBackend)
            raise ValueError(f"unknown reader backend {backend!r} (choose one of: {choices})") from None
        if passages < 1:
            raise ValueError(f"passages must be at least 1, got {passages}")
        if max_seq_length < 32 or stride < 0 or stride >= max_seq_length:
            raise ValueError("need max_seq_length >= 32 and 0 <= stride < max_seq_length")
        room = max_seq_length - stride - _SPECIAL_TOKENS - 1  # the most a question may take
        if max_question_tokens is None:
            max_question_tokens = min(MAX_QUESTION_TOKENS, room)
        if not 1 <= max_question_tokens <= room:
            raise ValueError(
                f"need 1 <= max_question_tokens and max_question_tokens + stride + {_SPECIAL_TOKENS} "
                f"< max_seq_length (got {max_question_tokens} + {stride} with {max_seq_length})"
            )
        self.model_path = str(model)
        self.passages = passages
        #: None until :meth:`warm_up`: the model's own tuned threshold (``policyqa_reader.json``) or 0.5.
        self.min_confidence = min_confidence
        self.max_seq_length = max_seq_length
        self.stride = stride
        self.max_question_tokens = max_question_tokens
        self.max_answer_tokens = max_answer_tokens
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self._model: Any = None  # the torch model, or an onnxruntime session
        self._onnx_inputs: frozenset[str] = frozenset()
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the tokenizer and the model (from the local path only)."""
        with self._lock:
            if self._model is not None:
                return
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            if self.model_path == BUILTIN_READER:
                if self.cache_dir is None:
                    raise ValueError("the builtin reader needs a cache_dir to build its model in")
                self.model_path = str(ensure_builtin_reader(self.cache_dir))
            if not Path(self.model_path).is_dir():
                raise FileNotFoundError(
                    f"reader model {self.model_path} is not a directory; give the local path of a "
                    "question-answering model (models are never downloaded at run time)"
                )
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
            if not getattr(self._tokenizer, "is_fast", False):
                raise ValueError(f"reader {self.model_path}: needs a fast tokenizer (tokenizer.json)")
            if self.min_confidence is None:
                self.min_confidence = _tuned_threshold(Path(self.model_path))
            if self.backend is not EncoderBackend.TORCH:
                self._model = self._onnx_session()
                return
            model = AutoModelForQuestionAnswering.from_pretrained(self.model_path, local_files_only=True)
            self._model = model.to(self.device).eval()
            logger.info("reader %s loaded on %s", self.model_path, self.device)

    def _onnx_session(self) -> Any:
        from policyqa.index.encoder import onnx_session
        from policyqa.index.onnx_export import OnnxVariant, ensure_onnx

        variant: OnnxVariant = "int8" if self.backend is EncoderBackend.ONNX_INT8 else "fp32"
        path = ensure_onnx(Path(self.model_path), variant, cache_dir=self.cache_dir, head="qa")
        session = onnx_session(path, self.device, f"the reader {self.model_path}")
        self._onnx_inputs = frozenset(i.name for i in session.get_inputs())
        logger.info("reader %s loaded (%s, %s)", self.model_path, self.backend.value, path.name)
        return session

    def clip_question(self, question: str) -> str:
        """``question``, or its last :attr:`max_question_tokens` tokens when it is longer (the
        tokenizer's limit is in tokens, not characters)."""
        enc = self._tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= self.max_question_tokens:
            return question
        return question[int(offsets[-self.max_question_tokens][0]) :].lstrip() or question

    def _windows(
        self, question: str, texts: Sequence[str]
    ) -> Iterator[
        tuple[int, npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[Any]]
    ]:
        """Run the model over ``texts`` in windows: per window, (passage index, context-token
        mask, token character offsets, start logits, end logits)."""
        tok = self._tokenizer
        question = self.clip_question(question)
        enc = tok(
            [question] * len(texts),
            list(texts),
            truncation="only_second",
            max_length=self.max_seq_length,
            stride=self.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="np",
        )
        mapping = enc.pop("overflow_to_sample_mapping")
        offsets = enc.pop("offset_mapping")
        names = set(tok.model_input_names)
        n = len(mapping)
        for b in range(0, n, self.batch_size):
            batch = {
                k: np.asarray(v[b : b + self.batch_size], dtype=np.int64)
                for k, v in enc.items()
                if k in names
            }
            starts, ends = self._logits(batch)
            for j in range(starts.shape[0]):
                w = b + j
                ctx = np.array([s == 1 for s in enc.sequence_ids(w)], dtype=bool)
                yield int(mapping[w]), ctx, np.asarray(offsets[w]), starts[j], ends[j]

    def _logits(self, batch: dict[str, npt.NDArray[np.int64]]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Start and end logits (batch, tokens) of one padded batch of windows."""
        if self.backend is not EncoderBackend.TORCH:
            feed = {k: v for k, v in batch.items() if k in self._onnx_inputs}
            if "token_type_ids" in self._onnx_inputs and "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(batch["input_ids"])
            start, end = self._model.run(None, feed)
            return np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)
        import torch

        with torch.no_grad():
            res = self._model(**{k: torch.as_tensor(v, device=self.device) for k, v in batch.items()})
        return res.start_logits.float().cpu().numpy(), res.end_logits.float().cpu().numpy()

    def _read(
        self, question: str, texts: Sequence[str], within: tuple[int, int] | None = None
    ) -> list[tuple[float, float, int, int, int]]:
        """Per window: (span score, null score, passage index, char start, char end).

        ``within=(lo, hi)``: only the (non-empty) tokens inside characters ``[lo, hi)`` of the
        texts may start or end the span.
        """
        out: list[tuple[float, float, int, int, int]] = []
        for passage, ctx, offs, s_log, e_log in self._windows(question, texts):
            if within is not None:
                lo, hi = within
                ctx = ctx & (offs[:, 0] >= lo) & (offs[:, 1] <= hi) & (offs[:, 1] > offs[:, 0])
            null = float(s_log[0] + e_log[0])
            idx = np.flatnonzero(ctx)
            if idx.size == 0:
                continue
            best = (-math.inf, 0, 0)
            # top candidates of start and end among context tokens
            s_top = idx[np.argsort(-s_log[idx])[:20]]
            e_top = idx[np.argsort(-e_log[idx])[:20]]
            for si in s_top:
                for ei in e_top:
                    if ei < si or ei - si + 1 > self.max_answer_tokens:
                        continue
                    score = float(s_log[si] + e_log[ei])
                    if score > best[0]:
                        best = (score, int(si), int(ei))
            if best[0] == -math.inf:
                continue
            c_start = int(offs[best[1]][0])
            c_end = int(offs[best[2]][1])
            if c_end > c_start:
                out.append((best[0], null, passage, c_start, c_end))
        return out

    def char_logits(self, question: str, texts: Sequence[str]) -> list[CharLogits]:
        """Per text, the reader's start and end logit of every character (that of the token
        holding it; the best over overlapping windows; ``-inf`` where no token covers it) and
        its no-answer score (the best ``[CLS]`` start + end logit over its windows). The span
        selector's features (:mod:`policyqa.answer.spans`) are read off these."""
        self.warm_up()
        out = [
            CharLogits(
                np.full(len(t), -np.inf, dtype=np.float32),
                np.full(len(t), -np.inf, dtype=np.float32),
                -math.inf,
            )
            for t in texts
        ]
        if not texts:
            return out
        for passage, ctx, offs, s_log, e_log in self._windows(question, texts):
            cur = out[passage]
            cur.null = max(cur.null, float(s_log[0] + e_log[0]))
            for j in np.flatnonzero(ctx & (offs[:, 1] > offs[:, 0])):
                a, b = int(offs[j][0]), int(offs[j][1])
                np.maximum(cur.start[a:b], s_log[j], out=cur.start[a:b])
                np.maximum(cur.end[a:b], e_log[j], out=cur.end[a:b])
        return out

    def best_span_within(self, question: str, text: str, lo: int, hi: int) -> tuple[int, int, float] | None:
        """The reader's best span of ``text`` inside ``[lo, hi)``: (start, end, score) or None.

        Used by the span selector to narrow the sentence(s) it chose to the answer itself.
        """
        self.warm_up()
        windows = self._read(question, [text], within=(lo, hi))
        if not windows:
            return None
        score, _null, _pi, a, b = max(windows, key=lambda t: t[0])
        a, b = strip_span(text, a, b)
        return (a, b, score) if b > a else None

    def select(self, question: str, hits: Sequence[Hit]) -> Answer:
        """The best span over the top passages, or no answer."""
        self.warm_up()
        top = list(hits)[: self.passages]
        if not top:
            return no_answer(question, hits)
        windows = self._read(question, [h.text for h in top])
        if not windows:
            return no_answer(question, hits)
        score, null, pi, s, e = max(windows, key=lambda t: (t[0], -t[2]))
        confidence = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, score - null))))
        hit = top[pi]
        s, e = strip_span(hit.text, s, e)  # whitespace the tokenizer offsets may include
        sent = next(((a, b) for a, b in split_sentences(hit.text) if a <= s and e <= b), (s, e))
        citations = citations_from_hits(list(hits), {hit.chunk_id: sent})
        if confidence < (self.min_confidence or 0.0) or e <= s:
            return no_answer(question, hits, confidence, citations)
        return Answer(
            question=question,
            text=hit.text[s:e],
            no_answer=False,
            confidence=confidence,
            doc_id=hit.doc_id,
            chunk_id=hit.chunk_id,
            start=hit.start + s,
            end=hit.start + e,
            sentence=hit.text[sent[0] : sent[1]],
            sentence_start=hit.start + sent[0],
            sentence_end=hit.start + sent[1],
            answer_type="reader",
            citation=pi + 1,
            citations=tuple(citations),
            passages=tuple(hits),
        )
