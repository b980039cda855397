"""The cross-encoder trainer's selection: a weight chosen by the worst benchmark, recorded in the adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policyqa.retriever.rerank.builtin import cross_encoder_info
from policyqa.train.cross_encoder import Group, select_weight, set_fuse_weight


def _group(bench: str, fused: tuple[float, ...], gold: str) -> Group:
    docs = ("a", "b", "c")
    return Group(bench, "test", f"{bench}-q", "问题", (gold,), docs, fused, ("甲", "乙", "丙"), "乙")


def test_the_weight_is_chosen_by_the_worst_benchmark_then_the_mean() -> None:
    # A: fused z = (0.7428, 0.6709, -1.4137), gold b; cross-encoder (-1, 1, 0) → z = (-1.2247,
    # 1.2247, 0): b overtakes a as soon as 2.449·w > 0.0719 (w ≥ 0.25 on the grid).
    # B: fused z = (1.3363, -0.2673, -1.0690), gold a; cross-encoder (0, 1, 0.5): b overtakes a
    # when 2.449·w > 1.6036, i.e. w > 0.6547 (from 0.75 on the grid); alone (1e6) it ranks a last.
    scored = {
        "A": [(_group("A", (3.0, 2.9, 0.0), "b"), [-1.0, 1.0, 0.0])],
        "B": [(_group("B", (3.0, 1.0, 0.0), "a"), [0.0, 1.0, 0.5])],
    }
    best, table = select_weight(scored)
    assert table["A"]["hybrid"] == 0.5 and table["B"]["hybrid"] == 1.0
    assert [table["A"][f"w={w:g}"] for w in (0, 0.25, 0.5, 0.75, 1e6)] == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert [table["B"][f"w={w:g}"] for w in (0, 0.25, 0.5, 0.75, 1e6)] == [1.0, 1.0, 1.0, 0.5, 1 / 3]
    # worst margin 0 for w ∈ {0, 0.25, 0.5}; the mean gain (0.25) rules out 0; then the smaller
    assert best == 0.25


def test_the_chosen_weight_is_recorded_in_the_adapter(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    from policyqa.retriever.rerank.builtin import ADAPTER_METADATA_KEY

    path = tmp_path / "ce.safetensors"
    tensors = {"classifier.weight": np.arange(4, dtype=np.float32).reshape(1, 4)}
    save_file(tensors, str(path), metadata={ADAPTER_METADATA_KEY: '{"layers": 4, "rank": 16}'})
    set_fuse_weight(path, 0.75, {"split": "test", "table": {"A": {"hybrid": 0.5}}})
    info = cross_encoder_info(path)
    assert info["layers"] == 4 and info["fuse_weight"] == 0.75
    assert info["selection"]["table"]["A"]["hybrid"] == 0.5
    np.testing.assert_array_equal(load_file(str(path))["classifier.weight"], tensors["classifier.weight"])


def test_an_adapter_without_its_metadata_is_not_rewritten(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(2, dtype=np.float32)}, str(path))
    with pytest.raises(ValueError, match="no 'policyqa_cross_encoder' metadata"):
        set_fuse_weight(path, 0.5, {})
