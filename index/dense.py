"""Dense index: normalised embeddings in a faiss inner-product index, and the embedding cache.

Embeddings are rounded to float16 once (that is how they are stored on disk and in the cache),
so a cached and a freshly computed vector give identical search results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np
import numpy.typing as npt

__all__ = ["DenseIndex", "EmbeddingCache", "PassageEncoder", "text_hash"]

logger = logging.getLogger(__name__)

_FORMAT = 1
F32 = npt.NDArray[np.float32]


def text_hash(text: str) -> str:
    """The embedding-cache key of a text (sha1 of its UTF-8 bytes)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class PassageEncoder(Protocol):
    """What the dense index needs from an encoder (see ``policyqa.index.encoder.Encoder``)."""

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    def encode_passages(self, texts: Sequence[str]) -> F32: ...

    def encode_queries(self, texts: Sequence[str]) -> F32: ...


class EmbeddingCache:
    """Embeddings keyed by (model, text hash), as float16 blobs in SQLite."""

    def __init__(self, directory: Path, model_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.@-]+", "_", model_id)[:120]
        self.path = directory / f"{safe}.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (hash TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def get_many(self, hashes: Sequence[str], dim: int) -> dict[str, npt.NDArray[np.float16]]:
        out: dict[str, npt.NDArray[np.float16]] = {}
        with self._lock:
            for i in range(0, len(hashes), 500):
                part = list(hashes[i : i + 500])
                marks = ",".join("?" * len(part))
                for h, blob in self._db.execute(f"SELECT hash, vec FROM emb WHERE hash IN ({marks})", part):
                    vec = np.frombuffer(blob, dtype=np.float16)
                    if vec.size == dim:
                        out[h] = vec
        return out

    def put_many(self, hashes: Sequence[str], vectors: npt.NDArray[np.float16]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb (hash, vec) VALUES (?, ?)",
                [(h, vectors[i].astype(np.float16).tobytes()) for i, h in enumerate(hashes)],
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def embed_with_cache(
    encoder: PassageEncoder,
    texts: Sequence[str],
    cache: EmbeddingCache | None,
    batch_size: int = 256,
    progress: object | None = None,
) -> tuple[npt.NDArray[np.float16], int]:
    """Float16 passage embeddings of ``texts``, computing only those not in the cache.

    Returns the matrix and how many texts were actually embedded. ``progress`` is an optional
    tqdm-like object whose ``update(n)`` is called as texts are embedded.
    """
    dim = encoder.dim
    hashes = [text_hash(t) for t in texts]
    found = cache.get_many(hashes, dim) if cache is not None else {}
    out = np.zeros((len(texts), dim), dtype=np.float16)
    todo: dict[str, int] = {}
    for i, h in enumerate(hashes):
        if h in found:
            out[i] = found[h]
        elif h not in todo:
            todo[h] = i
    if progress is not None:
        progress.update(len(texts) - len(todo))  # type: ignore[attr-defined]
    pending = list(todo.items())
    for start in range(0, len(pending), batch_size):
        part = pending[start : start + batch_size]
        vecs = encoder.encode_passages([texts[i] for _, i in part]).astype(np.float16)
        if cache is not None:
            cache.put_many([h for h, _ in part], vecs)
        for (h, _), v in zip(part, vecs, strict=True):
            found[h] = v
        if progress is not None:
            progress.update(len(part))  # type: ignore[attr-defined]
    for i, h in enumerate(hashes):
        if h in todo:
            out[i] = found[h]
    return out, len(todo)


class DenseIndex:
    """Exact inner-product search over float16-rounded, L2-normalised embeddings."""

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise ValueError(f"embedding dimension must be positive, got {dim}")
        self.dim = dim
        self._emb: npt.NDArray[np.float16] = np.zeros((0, dim), dtype=np.float16)
        self._faiss: faiss.Index | None = None

    @property
    def size(self) -> int:
        return int(self._emb.shape[0])

    @property
    def embeddings(self) -> npt.NDArray[np.float16]:
        return self._emb

    def build(self, embeddings: npt.NDArray[np.float16]) -> None:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"embeddings must have shape (n, {self.dim}), got {embeddings.shape}")
        self._emb = np.ascontiguousarray(embeddings, dtype=np.float16)
        index = faiss.IndexFlatIP(self.dim)
        if self.size:
            index.add(self._emb.astype(np.float32))
        self._faiss = index

    def search(
        self, query_vecs: F32, k: int, mask: npt.NDArray[np.bool_] | None = None
    ) -> tuple[npt.NDArray[np.int64], F32]:
        """Rows and scores (cosine) of the ``k`` nearest rows for each query vector.

        Rows that don't exist (fewer candidates than ``k``) come back as -1 and are removed by
        the caller. ``mask`` restricts the search to the rows where it is True.
        """
        if self._faiss is None or self.size == 0 or k <= 0:
            n = len(query_vecs)
            return np.full((n, 0), -1, dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
        q = np.ascontiguousarray(query_vecs, dtype=np.float32)
        k = min(k, self.size)
        if mask is not None:
            bits = np.packbits(mask.astype(np.uint8), bitorder="little")
            sel = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(bits))
            params = faiss.SearchParameters()
            params.sel = sel
            scores, rows = self._faiss.search(q, k, params=params)
        else:
            scores, rows = self._faiss.search(q, k)
        return rows.astype(np.int64), scores.astype(np.float32)

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "embeddings.f16.npy", self._emb)
        if self._faiss is not None:
            faiss.write_index(self._faiss, str(directory / "faiss.index"))
        params = {"format": _FORMAT, "dim": self.dim, "n": self.size, "faiss": "IndexFlatIP"}
        (directory / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> DenseIndex:
        params_path = directory / "params.json"
        if not params_path.is_file():
            raise FileNotFoundError(f"no dense index in {directory} (params.json missing)")
        params = json.loads(params_path.read_text(encoding="utf-8"))
        if params.get("format") != _FORMAT:
            raise ValueError(
                f"dense index format {params.get('format')} in {directory} is not {_FORMAT}; rebuild"
            )
        index = cls(int(params["dim"]))
        emb = np.load(directory / "embeddings.f16.npy", mmap_mode="r" if mmap else None)
        index._emb = emb
        faiss_path = directory / "faiss.index"
        if faiss_path.is_file():
            index._faiss = faiss.read_index(str(faiss_path))
        else:
            index.build(np.asarray(emb))
        return index
