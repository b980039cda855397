"""Test helpers: a small deterministic encoder and fixture loading."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from policyqa.corpus.models import DocMeta, Document
from policyqa.settings import Settings

if TYPE_CHECKING:
    from policyqa.train.answer import SpanGroup

DATA = Path(__file__).parent / "data"


class HashingEncoder:
    """Character-bigram feature hashing into a fixed dimension, L2-normalised.

    A real (if weak) bag-of-bigrams encoder: texts sharing bigrams get similar vectors. Used by
    the tests so dense and hybrid logic can be checked exactly without a neural model.
    """

    def warm_up(self) -> HashingEncoder:
        """Nothing to load."""
        return self

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


def milvus_settings(root: Path, **extra: object) -> Settings:
    """Settings of a Milvus-backend test under ``root`` (Milvus Lite beside the index dir, FLAT
    dense index so searches are exact), with ``extra`` on top."""
    return Settings(
        cache_dir=root / "cache",
        index_dir=root / "index",
        progress=False,
        chunk_max_chars=120,
        backend="milvus",
        milvus_dense_index="FLAT",
        **extra,  # type: ignore[arg-type]
    )


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


#: Special tokens and the characters of the tiny test BERTs (reader, adapter): one id each.
TINY_ZH_VOCAB: list[str] = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    *list("的是在和了有多少个项目一季度落地重点力争年月日计划区市南青岛，。？0123456789"),
]


def save_tiny_bert(path: Path, model_class: str, vocab: Sequence[str] = TINY_ZH_VOCAB, **config: int) -> Path:
    """Build a tiny random BERT of ``transformers.<model_class>`` with a character tokenizer over
    ``vocab`` and save both to ``path`` (seeded, so it is the same every run). ``config``
    overrides the BertConfig fields (e.g. ``num_labels=1``, ``max_position_embeddings=64``)."""
    import torch
    import transformers
    from transformers import BertConfig, BertTokenizerFast

    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    ids = {t: i for i, t in enumerate(vocab)}  # (transformers 5 ignores a vocab_file here)
    tok = BertTokenizerFast(vocab=ids, do_lower_case=False, tokenize_chinese_chars=True)
    settings: dict[str, int] = {
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 128,
    }
    settings.update(config)
    model = getattr(transformers, model_class)(BertConfig(vocab_size=len(vocab), **settings))
    model.eval().save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def learnable_span_groups(n: int = 60, seed: int = 0, *, positions: bool = True) -> list[SpanGroup]:
    """``n`` questions of six candidate spans over the full span feature set, where the right
    span (F1 0.9, the others 0.1) is the one with the best reader start logit
    (``reader_rel_start`` 0, the others -3); five more rows stand for the candidates left
    without the gold document, and ``positions`` gives each span a place in its own document."""
    from policyqa.answer.selector import FEATURE_SETS
    from policyqa.train.answer import SpanGroup

    full = FEATURE_SETS[-1]
    col = full.index("reader_rel_start")
    rng = np.random.default_rng(seed)
    out: list[SpanGroup] = []
    for q in range(n):
        x = rng.normal(size=(6, len(full)))
        right = q % 6
        x[:, col] = -3.0
        x[right, col] = 0.0
        f1 = np.full(6, 0.1)
        f1[right] = 0.9
        co = (f1 > 0.5).astype(np.float64)
        wrong = rng.normal(size=(5, len(full)))
        wrong[:, col] = -3.0
        where = tuple((f"d{q}", 10 * i, 10 * i + 5) for i in range(6)) if positions else ()
        out.append(SpanGroup(f"q{q}", x, f1, co, co.copy(), wrong, where))
    return out


#: Every module that makes the settings' encoder (``policyqa.index.encoder.encoder_for``).
ENCODER_MAKERS = (
    "policyqa.index.embedded.encoder_for",
    "policyqa.index.milvus.encoder_for",
    "policyqa.qa.encoder_for",
    "policyqa.service.encoder_for",
)


def use_hashing_encoder(monkeypatch: Any, dim: int = 256) -> None:
    """Make every stage that builds the settings' encoder build a :class:`HashingEncoder`
    instead (no model to load), as a CLI run or a service would."""
    for target in ENCODER_MAKERS:
        monkeypatch.setattr(target, lambda settings, model=None: HashingEncoder(dim))
