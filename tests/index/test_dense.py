"""Dense index: exact and IVF modes, filters, growth, persistence; the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from policyqa.index.dense import DenseIndex, EmbeddingCache, embed_with_cache
from tests.helpers import HashingEncoder


def _clustered(
    n: int, dim: int = 32, seed: int = 0
) -> tuple[npt.NDArray[np.float16], npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    x = centres[rng.integers(0, 40, n)] + 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = centres[:8] + 0.05 * rng.standard_normal((8, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x.astype(np.float16), q


def test_exact_search_is_exact() -> None:
    x, q = _clustered(500)
    idx = DenseIndex(32)
    idx.build(x)
    rows, scores = idx.search(q, 5)
    brute = x.astype(np.float32) @ q.T
    for j in range(len(q)):
        np.testing.assert_allclose(scores[j], np.sort(brute[:, j])[::-1][:5], rtol=1e-5)
    assert idx.kind == "flat"


def test_ivf_above_the_exact_limit_keeps_recall() -> None:
    x, q = _clustered(6000)
    exact, approx = DenseIndex(32), DenseIndex(32, exact_max=1000, nprobe=16)
    exact.build(x)
    approx.build(x)
    assert approx.kind == "ivf-fp16"
    r1, _ = exact.search(q, 10)
    r2, _ = approx.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(r1, r2, strict=True)])
    assert recall >= 0.95


@pytest.mark.parametrize("exact_max", [10**6, 1000])
def test_masks_restrict_rows(exact_max: int) -> None:
    x, q = _clustered(4000)
    idx = DenseIndex(32, exact_max=exact_max)
    idx.build(x)
    sparse = np.zeros(4000, dtype=bool)
    sparse[::97] = True  # selective: searched exactly over the allowed rows
    rows, _ = idx.search(q, 5, sparse)
    assert set(rows.ravel().tolist()) <= set(np.flatnonzero(sparse).tolist())
    broad = np.ones(4000, dtype=bool)
    broad[::2] = False
    rows, _ = idx.search(q, 5, broad)
    assert all(r % 2 == 1 for r in rows.ravel().tolist() if r >= 0)


def test_extend_grows_without_rebuilding(tmp_path: Path) -> None:
    x, q = _clustered(3000)
    idx = DenseIndex(32, exact_max=1000)
    idx.build(x[:2500])
    idx.extend(x[2500:])
    assert idx.size == 3000 and idx.kind == "ivf-fp16"
    rows, _ = idx.search(x[2990:2991].astype(np.float32), 1)
    assert rows[0, 0] == 2990 or float(x[rows[0, 0]].astype(np.float32) @ x[2990].astype(np.float32)) > 0.999
    idx.save(tmp_path / "d")
    again = DenseIndex.load(tmp_path / "d", mmap=True)
    assert again.kind == "ivf-fp16" and again.size == 3000
    np.testing.assert_array_equal(again.search(q, 5)[0], idx.search(q, 5)[0])


def test_embedding_cache_embeds_each_text_once(tmp_path: Path) -> None:
    enc = HashingEncoder(dim=16)
    cache = EmbeddingCache(tmp_path, enc.model_id)
    texts = ["稳岗返还", "贸易便利化", "稳岗返还"]
    first, n1 = embed_with_cache(enc, texts, cache)
    second, n2 = embed_with_cache(enc, texts, cache)
    cache.close()
    assert (n1, n2) == (2, 0)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[0], first[2])


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="dimension"):
        DenseIndex(0)
    with pytest.raises(ValueError, match="shape"):
        DenseIndex(8).build(np.zeros((3, 4), dtype=np.float16))


def test_automatic_nprobe_follows_nlist() -> None:
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((3000, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    auto = DenseIndex(16, exact_max=1000)
    auto.build(emb.astype(np.float16))
    nlist = max(16, int(4 * np.sqrt(3000)))
    assert auto.kind == "ivf-fp16" and auto.effective_nprobe() == min(nlist, max(64, nlist // 16))
    assert DenseIndex(16, exact_max=1000, nprobe=8).effective_nprobe(nlist) == 8
    assert DenseIndex(16, nprobe=0).effective_nprobe(4000) == 250
    with pytest.raises(ValueError, match="nprobe"):
        DenseIndex(16, nprobe=-1)
