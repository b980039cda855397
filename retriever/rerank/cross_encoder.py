"""Cross-encoder rerankers: any sentence-transformers ``CrossEncoder`` by name or local path."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from policyqa.retriever.base import Hit

from .base import apply_rerank_scores, check_rerank_top_k

__all__ = ["CrossEncoderBackend", "CrossEncoderReranker", "export_cross_encoder_onnx"]

logger = logging.getLogger(__name__)

ONNX_INT8_NAME = "model_int8.onnx"
ONNX_FP32_NAME = "model.onnx"

CrossEncoderBackend = Literal["auto", "torch", "onnx-int8"]


def _find_int8(model_dir: Path) -> Path | None:
    for candidate in (model_dir / "onnx" / ONNX_INT8_NAME, model_dir / ONNX_INT8_NAME):
        if candidate.is_file():
            return candidate
    onnx_dir = model_dir / "onnx"
    if onnx_dir.is_dir():
        found = sorted(p for p in onnx_dir.glob("*.onnx") if "int8" in p.name or "qint8" in p.name)
        if found:
            return found[0]
    return None


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a cross-encoder.

    :param model: a sentence-transformers ``CrossEncoder`` name or local path.
    :param max_length: token limit of a (query, passage) pair; longer passages are cut.
    :param batch_size: pairs per forward pass.
    :param backend: ``auto`` runs ``onnx/model_int8.onnx`` with onnxruntime when the model is a
        local directory that has it, torch otherwise; ``onnx-int8`` requires it; ``torch``
        never uses it.
    :param with_title: prefix each passage with its document title.
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
    ) -> None:
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
            local = Path(self.model)
            int8 = _find_int8(local) if local.is_dir() and self.backend != "torch" else None
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

    def _passage(self, hit: Hit) -> str:
        if self.with_title and hit.title and not hit.text.startswith(hit.title):
            return f"{hit.title}\n{hit.text}"
        return hit.text

    def predict(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Relevance scores of (query, passage) pairs (higher is more relevant)."""
        self.warm_up()
        if not pairs:
            return []
        if self._session is not None:
            return self._predict_onnx(pairs)
        raw = self._torch.predict(
            [list(p) for p in pairs], batch_size=self.batch_size, show_progress_bar=False
        )
        arr = np.asarray(raw, dtype=np.float64)
        if arr.ndim == 2:  # several labels: the last one is "relevant"
            arr = arr[:, -1]
        return [float(v) for v in arr.reshape(-1)]

    def _predict_onnx(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
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
            scores = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))  # as CrossEncoder's default Sigmoid
            out.extend(float(v) for v in scores)
        return out

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        check_rerank_top_k(top_k)
        if not hits:
            return []
        scores = self.predict([(query, self._passage(h)) for h in hits])
        return apply_rerank_scores(hits, scores, top_k)


def export_cross_encoder_onnx(model_dir: Path, *, quantize: bool = True, opset: int = 17) -> Path:
    """Export a local cross-encoder (a ``*ForSequenceClassification`` directory) to ONNX.

    Writes ``model_dir/onnx/model.onnx`` and, with ``quantize``, the dynamically quantised
    ``model_dir/onnx/model_int8.onnx`` that :class:`CrossEncoderReranker` picks up; returns the
    path of the file it would use.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    out_dir = model_dir / "onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    sample = tokenizer(["问题"], ["段落文本"], return_tensors="pt")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    axes = {k: {0: "batch", 1: "seq"} for k in names}
    axes["logits"] = {0: "batch"}
    fp32 = out_dir / ONNX_FP32_NAME

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args, strict=True))).logits

    # the legacy TorchScript exporter (no onnxscript needed) warns that it is legacy: not ours
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Wrapper(model),
            tuple(sample[k] for k in names),
            str(fp32),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    if not quantize:
        return fp32
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = out_dir / ONNX_INT8_NAME
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    return int8
