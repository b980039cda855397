"""Test helpers: a small deterministic encoder and fixture loading."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from policyqa.corpus.models import DocMeta, Document

DATA = Path(__file__).parent / "data"


class HashingEncoder:
    """Character-bigram feature hashing into a fixed dimension, L2-normalised.

    A real (if weak) bag-of-bigrams encoder: texts sharing bigrams get similar vectors. Used by
    the tests so dense and hybrid logic can be checked exactly without a neural model.
    """

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim
        self.calls = 0
        self.texts_encoded = 0

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        return f"hashing-bigram-{self._dim}"

    @property
    def model_name(self) -> str:
        return "hashing-bigram"

    def _encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls += 1
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            t = "".join(ch for ch in t if not ch.isspace())
            for a, b in zip(t, t[1:], strict=False):
                h = int.from_bytes(hashlib.md5((a + b).encode()).digest()[:4], "little")
                out[i, h % self._dim] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts)


def fixture_documents() -> list[Document]:
    docs = []
    for line in (DATA / "policy_fixture.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        docs.append(
            Document(
                id=rec["id"],
                title=rec["title"],
                text=rec["text"],
                meta=DocMeta(source="fixture", date=rec["date"], issuer=rec["issuer"]),
            )
        )
    return docs


def fixture_queries() -> list[tuple[str, str, list[str]]]:
    out = []
    for line in (DATA / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        out.append((rec["_id"], rec["text"], rec["gold"]))
    return out
