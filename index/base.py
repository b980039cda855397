"""What an open index is, whatever holds it: the contract both backends implement.

An :class:`OpenIndex` is what every later stage receives: the retriever factory
(:func:`policyqa.retriever.factory.retriever_for`), the rerankers, the answer stage, the service
and the benchmarks. The embedded backend (:class:`policyqa.index.embedded.EmbeddedIndex`, files
under an index directory) and the Milvus backend (:class:`policyqa.index.milvus.MilvusIndex`)
both implement it, and ``tests/index/test_backends.py`` runs one contract suite over both.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from policyqa.corpus.models import Chunk, Document
from policyqa.settings import Settings

from .dense import PassageEncoder
from .tokenizer import ChineseTokenizer

__all__ = ["DocumentStore", "OpenIndex", "TermStatistics"]


@runtime_checkable
class DocumentStore(Protocol):
    """The documents and chunks of an index, for reading.

    ``list_documents`` gives one row per document in index order, with the keys ``doc_id``,
    ``title``, ``issuer``, ``doc_number``, ``date``, ``doc_type``, ``region``, ``source``,
    ``n_chunks`` and ``n_chars``.
    """

    def count_documents(self) -> int: ...

    def count_chunks(self) -> int: ...

    def doc_ids(self) -> list[str]: ...

    def has_document(self, doc_id: str) -> bool: ...

    def get_document(self, doc_id: str) -> Document | None: ...

    def chunks_of(self, doc_id: str) -> list[Chunk]: ...

    def list_documents(self, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]: ...


class TermStatistics(Protocol):
    """Document frequencies of an index's BM25 vocabulary (the IDFs of the rerankers' and the
    answer stage's term features)."""

    def term_statistics(self) -> tuple[dict[str, int], npt.NDArray[np.float64], int]: ...


@runtime_checkable
class OpenIndex(Protocol):
    """An index opened for searching (see the module docstring).

    ``bm25`` is the chunk BM25 index's statistics where the backend keeps them on the client (the
    embedded one), else None (Milvus keeps its own inside the server). ``version`` names what is
    served (a generation, or the collections).
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> DocumentStore: ...

    @property
    def encoder(self) -> PassageEncoder: ...

    @property
    def tokenizer(self) -> ChineseTokenizer: ...

    @property
    def bm25(self) -> TermStatistics | None: ...

    @property
    def manifest(self) -> dict[str, Any]: ...

    @property
    def version(self) -> str: ...

    def close(self) -> None: ...
