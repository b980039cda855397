"""A local cross-encoder's ONNX export: what :class:`~policyqa.retriever.rerank.CrossEncoderReranker`
runs with onnxruntime when a model directory holds ``onnx/model_int8.onnx``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

__all__ = ["ONNX_FP32_NAME", "ONNX_INT8_NAME", "export_cross_encoder_onnx", "find_int8"]

ONNX_INT8_NAME = "model_int8.onnx"
ONNX_FP32_NAME = "model.onnx"


def find_int8(model_dir: Path) -> Path | None:
    """The int8 ONNX export in ``model_dir`` (``onnx/model_int8.onnx`` first), or None."""
    for candidate in (model_dir / "onnx" / ONNX_INT8_NAME, model_dir / ONNX_INT8_NAME):
        if candidate.is_file():
            return candidate
    onnx_dir = model_dir / "onnx"
    if onnx_dir.is_dir():
        found = sorted(p for p in onnx_dir.glob("*.onnx") if "int8" in p.name or "qint8" in p.name)
        if found:
            return found[0]
    return None


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
