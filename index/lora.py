"""Low-rank adapters over the converted encoder: what the shipped models are made of.

The built-in reader (:mod:`policyqa.answer.lora`) and the built-in cross-encoder
(:mod:`policyqa.retriever.rerank.builtin`) are multilingual-e5-small with a LoRA update on its
linear layers, trained here and shipped as small safetensors files: the factors ``A`` (rank ×
in) and ``B`` (out × rank) of each wrapped layer (``encoder.layer.N.….lora_a`` / ``.lora_b``),
plus whole tensors (LayerNorms, heads) that replace the base model's. :func:`apply_lora` merges
them into the base weights, ``W + (alpha / rank) · B A``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TOKENIZER_FILES", "adapter_metadata", "apply_lora", "base_tensors", "write_merged_model"]

#: The tokenizer files a merged model directory gets from the base model.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def adapter_metadata(path: Path, key: str) -> dict[str, Any]:
    """The JSON metadata ``key`` of an adapter file (``ValueError`` when it has none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    if key not in meta:
        raise ValueError(f"{path} is not a policyqa adapter of this kind (no {key!r} metadata)")
    info: dict[str, Any] = json.loads(meta[key])
    return info


def base_tensors(base_dir: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The base model's weights as ``bert.<name>`` float32 arrays (the pooler kept)."""
    from safetensors.numpy import load_file

    base = load_file(str(base_dir / "model.safetensors"))
    prefix = "" if "embeddings.word_embeddings.weight" in base else "bert."
    out: dict[str, npt.NDArray[np.float32]] = {}
    for name, value in base.items():
        key = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        out[f"bert.{key}"] = np.asarray(value, dtype=np.float32)
    return out


def apply_lora(
    merged: dict[str, npt.NDArray[np.float32]],
    adapter: dict[str, Any],
    scale: float,
    heads: tuple[str, ...],
    *,
    source: Path | str = "adapter",
) -> None:
    """Merge ``adapter`` into ``merged`` (``bert.``-prefixed weights) in place: each LoRA pair
    adds ``scale · B A`` to its layer's weight; a tensor under one of ``heads`` is set as it is;
    any other tensor replaces the base tensor of that name, which must exist."""
    for name, value in adapter.items():
        if name.endswith(".lora_a"):
            module = name[: -len(".lora_a")]
            a = np.asarray(value, dtype=np.float32)
            b = np.asarray(adapter[f"{module}.lora_b"], dtype=np.float32)
            key = f"bert.{module}.weight"
            if key not in merged:
                raise ValueError(f"{source}: base model has no {key}")
            merged[key] = merged[key] + scale * (b @ a)
        elif name.endswith(".lora_b"):
            continue
        elif name.startswith(heads):
            merged[name] = np.asarray(value, dtype=np.float32)
        else:
            key = f"bert.{name}"
            if key not in merged:
                raise ValueError(f"{source}: base model has no {key}")
            merged[key] = np.asarray(value, dtype=np.float32)


def write_merged_model(
    out_dir: Path,
    tensors: dict[str, npt.NDArray[np.float32]],
    base_dir: Path,
    config_updates: dict[str, Any],
    info_file: str,
    info: dict[str, Any],
) -> Path:
    """Write a transformers model directory atomically (beside it, then renamed): the weights,
    the base model's config with ``config_updates``, its tokenizer files and ``info`` as
    ``info_file``."""
    from safetensors.numpy import save_file

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / "model.safetensors"))
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    config.update(config_updates)
    (tmp / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    for fname in TOKENIZER_FILES:
        if (base_dir / fname).exists():
            shutil.copy2(base_dir / fname, tmp / fname)
    (tmp / info_file).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
