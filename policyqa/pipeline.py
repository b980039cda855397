"""Indexing and opening, whichever backend the settings name: the one place that chooses.

``build_index`` writes a new index from documents, ``add_documents`` and ``delete_documents``
change an existing one without re-tokenizing or re-embedding what is already there, and
``open_index`` loads an index for searching. ``settings.backend`` picks the implementation:
``embedded`` (files under ``index_dir``, :mod:`policyqa.index.embedded`) or ``milvus`` (Milvus
collections, :mod:`policyqa.index.milvus`). Both open as an
:class:`~policyqa.index.base.OpenIndex`; retrieve from it with
:func:`policyqa.retriever.factory.retriever_for`, or ask through
:class:`policyqa.qa.QAPipeline`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from policyqa.corpus.models import Document
from policyqa.index.base import OpenIndex
from policyqa.index.dense import PassageEncoder
from policyqa.index.embedded import (
    EmbeddedIndex,
    add_embedded_documents,
    build_embedded_index,
    delete_embedded_documents,
    open_embedded_index,
)
from policyqa.index.layout import IndexLayout, IndexNotFoundError, IndexVersionError
from policyqa.index.milvus import (
    MilvusIndex,
    build_milvus_index,
    describe_milvus,
    milvus_exists,
    open_milvus_index,
)
from policyqa.settings import Settings

__all__ = [
    "EmbeddedIndex",
    "IndexNotFoundError",
    "IndexVersionError",
    "MilvusIndex",
    "OpenIndex",
    "add_documents",
    "build_index",
    "delete_documents",
    "describe_index",
    "index_exists",
    "open_index",
]


def build_index(
    documents: Iterable[Document],
    index_dir: Path,
    settings: Settings,
    *,
    show_progress: bool = True,
    encoder: PassageEncoder | None = None,
) -> dict[str, Any]:
    """Build a new index from ``documents`` (replacing any index there); returns the manifest
    (for Milvus: a summary of the rebuilt collections)."""
    if settings.backend == "milvus":
        return build_milvus_index(
            documents, settings, index_dir=index_dir, encoder=encoder, show_progress=show_progress
        )
    return build_embedded_index(documents, index_dir, settings, show_progress=show_progress, encoder=encoder)


def add_documents(
    documents: Iterable[Document],
    index_dir: Path,
    settings: Settings,
    *,
    show_progress: bool = True,
    encoder: PassageEncoder | None = None,
) -> dict[str, Any]:
    """Add documents to an existing index (a document whose id exists replaces it)."""
    if settings.backend == "milvus":
        with open_milvus_index(settings, index_dir=index_dir, encoder=encoder) as milvus:
            return milvus.add_documents(documents, show_progress=show_progress)
    return add_embedded_documents(
        documents, index_dir, settings, show_progress=show_progress, encoder=encoder
    )


def delete_documents(
    doc_ids: Iterable[str],
    index_dir: Path,
    settings: Settings,
    *,
    encoder: PassageEncoder | None = None,
) -> dict[str, Any]:
    """Remove documents by id; unknown ids raise ``KeyError`` and change nothing."""
    if settings.backend == "milvus":
        with open_milvus_index(settings, index_dir=index_dir, encoder=encoder) as milvus:
            return milvus.delete_documents(doc_ids)
    return delete_embedded_documents(doc_ids, index_dir, settings, encoder=encoder)


def open_index(
    index_dir: Path,
    settings: Settings,
    *,
    encoder: PassageEncoder | None = None,
    mmap: bool = True,
) -> EmbeddedIndex | MilvusIndex:
    """Open the index of ``settings.backend``: the embedded index's current generation, or the
    Milvus collections (checked against the encoder: another dimension asks for a rebuild)."""
    if settings.backend == "milvus":
        return open_milvus_index(settings, index_dir=index_dir, encoder=encoder)
    return open_embedded_index(index_dir, settings, encoder=encoder, mmap=mmap)


def index_exists(index_dir: Path, settings: Settings) -> bool:
    """Whether there is an index to open (for milvus: whether its collections exist)."""
    if settings.backend == "milvus":
        return milvus_exists(settings, index_dir=index_dir)
    return IndexLayout(index_dir).exists()


def describe_index(index_dir: Path, settings: Settings) -> dict[str, Any]:
    """The manifest of the current generation, or the Milvus collections' description."""
    if settings.backend == "milvus":
        return describe_milvus(settings, index_dir=index_dir)
    return IndexLayout(index_dir).read_manifest()
