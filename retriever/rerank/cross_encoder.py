"""Cross-encoder rerankers: any sentence-transformers ``CrossEncoder`` by name or local path."""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from policyqa.corpus.text import split_sentences
from policyqa.retriever.base import Hit

from .base import apply_rerank_scores, check_rerank_top_k, zscores
from .builtin import ADAPTER_SUFFIX, BUILTIN_CROSS_ENCODER, INFO_FILE, ensure_builtin_cross_encoder
from .onnx import find_int8

__all__ = ["CrossEncoderBackend", "CrossEncoderReranker", "focus_window", "pair_text"]

logger = logging.getLogger(__name__)


CrossEncoderBackend = Literal["auto", "torch", "onnx-int8"]


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1) if not text[i : i + 2].isspace()}


def focus_window(query: str, text: str, max_chars: int) -> str:
    """The part of ``text`` a short-input cross-encoder reads: all of it when it fits in
    ``max_chars``, else the sentence sharing the most character bigrams with ``query`` (the
    first of equals) widened by its neighbours, the next one first, up to ``max_chars``."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    if len(text) <= max_chars:
        return text
    spans = split_sentences(text) or [(0, len(text))]
    wanted = _bigrams(query)
    best = max(range(len(spans)), key=lambda i: (len(_bigrams(text[spans[i][0] : spans[i][1]]) & wanted), -i))
    lo, hi = best, best
    while True:
        grown = False
        if hi + 1 < len(spans) and spans[hi + 1][1] - spans[lo][0] <= max_chars:
            hi, grown = hi + 1, True
        if lo > 0 and spans[hi][1] - spans[lo - 1][0] <= max_chars:
            lo, grown = lo - 1, True
        if not grown:
            break
    start = spans[lo][0]
    return text[start : min(spans[hi][1], start + max_chars)]


def pair_text(hit: Hit, with_title: bool = True) -> str:
    """The passage side of a (question, passage) pair: the hit's text, after its document title
    when ``with_title`` and the text does not already start with it."""
    if with_title and hit.title and not hit.text.startswith(hit.title):
        return f"{hit.title}\n{hit.text}"
    return hit.text


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a cross-encoder.

    :param model: a sentence-transformers ``CrossEncoder`` name or local path.
    :param max_length: token limit of a (query, passage) pair; longer passages are cut.
    :param batch_size: pairs per forward pass.
    :param backend: ``auto`` runs ``onnx/model_int8.onnx`` with onnxruntime when the model is a
        local directory that has it, torch otherwise; ``onnx-int8`` requires it; ``torch``
        never uses it.
    :param with_title: prefix each passage with its document title.
    :param window_chars: read only this many characters of each passage, around its sentence
        closest to the question (:func:`focus_window`); None reads it whole (cut at ``max_length``).
    :param fuse_weight: None ranks by the cross-encoder's score alone; a weight ``w`` ranks by
        ``z(retriever score) + w · z(cross-encoder logit)`` (z over the candidates; the
        retriever score is the fused score of hybrid hits), so that the retriever's evidence is
        kept and ``w`` says how far the cross-encoder may move it.
    :param cache_dir: where the built-in model (``model="builtin"``) is built on first use.

    ``model="builtin"`` selects the cross-encoder trained by policyqa
    (:mod:`policyqa.retriever.rerank.builtin`); its ``max_length``, ``window_chars`` and
    ``fuse_weight`` come with it unless given here.
    """

    name = "cross-encoder"

    def __init__(
        self,
        model: str | Path,
        *,
        max_length: int = 512,
        batch_size: int = 16,
        backend: CrossEncoderBackend = "auto",
        device: str = "cpu",
        with_title: bool = True,
        window_chars: int | None = None,
        fuse_weight: float | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if window_chars is not None and window_chars < 1:
            raise ValueError(f"window_chars must be at least 1, got {window_chars}")
        if fuse_weight is not None and not fuse_weight >= 0:
            raise ValueError(f"fuse_weight must be at least 0, got {fuse_weight}")
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if backend not in ("auto", "torch", "onnx-int8"):
            raise ValueError(f"backend must be auto, torch or onnx-int8, got {backend!r}")
        self.model = str(model)
        self.max_length = max_length
        self.batch_size = batch_size
        self.backend = backend
        self.device = device
        self.with_title = with_title
        self.window_chars = window_chars
        self.fuse_weight = fuse_weight
        self.cache_dir = cache_dir
        self._given = {"window_chars": window_chars is not None, "fuse_weight": fuse_weight is not None}
        self._torch: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.active_backend: str | None = None

    def warm_up(self) -> None:
        """Load the model (torch or onnxruntime) and its tokenizer."""
        with self._lock:
            if self._torch is not None or self._session is not None:
                return
            if self.model == BUILTIN_CROSS_ENCODER or self.model.endswith(ADAPTER_SUFFIX):
                self._resolve_builtin()
            local = Path(self.model)
            int8 = find_int8(local) if local.is_dir() and self.backend != "torch" else None
            if self.backend == "onnx-int8" and int8 is None:
                raise FileNotFoundError(
                    f"no int8 ONNX export in {self.model}; create one with "
                    "policyqa.retriever.rerank.export_cross_encoder_onnx or use backend 'auto'"
                )
            if int8 is not None:
                import onnxruntime as ort
                from transformers import AutoTokenizer

                opts = ort.SessionOptions()
                opts.log_severity_level = 3
                self._session = ort.InferenceSession(
                    str(int8), sess_options=opts, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = AutoTokenizer.from_pretrained(str(local))
                self.active_backend = "onnx-int8"
                logger.info("cross-encoder %s: onnxruntime int8 (%s)", self.model, int8.name)
                return
            from sentence_transformers import CrossEncoder

            self._torch = CrossEncoder(self.model, max_length=self.max_length, device=self.device)
            self.active_backend = "torch"
            logger.info("cross-encoder %s: torch on %s", self.model, self.device)

    def _resolve_builtin(self) -> None:
        if self.cache_dir is None:
            raise ValueError("the builtin cross-encoder needs a cache_dir to build its model in")
        adapter = None if self.model == BUILTIN_CROSS_ENCODER else Path(self.model)
        local = ensure_builtin_cross_encoder(self.cache_dir, adapter)
        info = json.loads((local / INFO_FILE).read_text(encoding="utf-8"))
        self.model = str(local)
        self.backend = "onnx-int8"
        self.max_length = int(info["max_length"])
        if not self._given["window_chars"]:
            self.window_chars = int(info["window_chars"])
        if not self._given["fuse_weight"] and info.get("fuse_weight") is not None:
            self.fuse_weight = float(info["fuse_weight"])

    def predict(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Relevance scores of (query, passage) pairs (higher is more relevant)."""
        self.warm_up()
        if not pairs:
            return []
        if self._session is not None:
            return [1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, v)))) for v in self.logits(pairs)]
        raw = self._torch.predict(
            [list(p) for p in pairs], batch_size=self.batch_size, show_progress_bar=False
        )
        arr = np.asarray(raw, dtype=np.float64)
        if arr.ndim == 2:  # several labels: the last one is "relevant"
            arr = arr[:, -1]
        return [float(v) for v in arr.reshape(-1)]

    def logits(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The raw relevance logits of (query, passage) pairs (the score before any activation;
        for a torch model, what ``predict`` gives)."""
        self.warm_up()
        if self._session is None:
            return self.predict(pairs)
        names = {i.name for i in self._session.get_inputs()}
        out: list[float] = []
        for i in range(0, len(pairs), self.batch_size):
            batch = pairs[i : i + self.batch_size]
            enc = self._tokenizer(
                [p[0] for p in batch],
                [p[1] for p in batch],
                padding=True,
                truncation="longest_first",
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in names}
            logits = np.asarray(self._session.run(None, feed)[0], dtype=np.float64)
            if logits.ndim == 2 and logits.shape[1] > 1:
                logits = logits[:, -1]
            out.extend(float(v) for v in logits.reshape(-1))
        return out

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        check_rerank_top_k(top_k)
        if not hits:
            return []
        pairs = [(query, self.passage(query, h)) for h in hits]
        if self.fuse_weight is None:
            return apply_rerank_scores(hits, self.predict(pairs), top_k)
        retriever = [h.scores.get("fused", h.score) for h in hits]
        fused = zscores(retriever) + self.fuse_weight * zscores(self.logits(pairs))
        return apply_rerank_scores(hits, fused.tolist(), top_k)

    def passage(self, query: str, hit: Hit) -> str:
        """What the model reads of ``hit`` for ``query`` (title, then the focus window)."""
        text = pair_text(hit, self.with_title)
        return text if self.window_chars is None else focus_window(query, text, self.window_chars)
