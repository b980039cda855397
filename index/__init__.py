"""Indexes: the Chinese tokenizer, BM25, the dense encoder and index, the chunk store, the layout."""

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
