"""The indexing plan both writers follow: documents → chunks → passage texts → vectors.

The embedded writer (:mod:`policyqa.index.embedded`) and the Milvus writer
(:mod:`policyqa.index.milvus`) store the result differently, but what gets chunked, what text a
chunk is indexed and embedded as, and which sentences the default reranker finds in the
embedding cache are decided here, once:

- :func:`chunker_for` builds the structure-aware chunker, capped by the encoder's token limit;
- :func:`passage_text` is what BM25 and the encoder see of a chunk: the document's
  :func:`index_title` and the heading path in front of the chunk's own text;
- :class:`IndexingPlan` prepares documents (:meth:`~IndexingPlan.prepare`), embeds passage
  texts through the embedding cache (:meth:`~IndexingPlan.embed`) and, when the settings' reranker
  reads sentence vectors, embeds each chunk's sentences into the cache too
  (:meth:`~IndexingPlan.embed_sentences`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policyqa.corpus.chunker import Chunker
from policyqa.corpus.metadata import extract_title
from policyqa.corpus.models import Chunk, Document
from policyqa.corpus.text import embedding_sentences
from policyqa.settings import Settings

from .dense import EmbeddingCache, PassageEncoder, embed_with_cache

__all__ = [
    "INDEX_BATCH_CHARS",
    "PASSAGE_TEMPLATE_VERSION",
    "IndexingPlan",
    "PreparedDocument",
    "batches",
    "chunker_for",
    "dedupe_documents",
    "index_title",
    "passage_text",
]

logger = logging.getLogger(__name__)

#: Version of the text that is tokenized and embedded for a chunk (see :func:`passage_text`).
#: 2: a document without a title carries the title line read from its text (:func:`index_title`).
PASSAGE_TEMPLATE_VERSION = 2
#: New documents are indexed in batches of about this many characters (bounded memory).
INDEX_BATCH_CHARS = 5_000_000


def index_title(doc: Document) -> str:
    """The title carried into a document's chunks: its own, else the title line of its text.

    Documents that arrive without a title (a BEIR ``corpus.jsonl`` with empty titles, an API
    upload) usually open with one; :func:`~policyqa.corpus.metadata.extract_title` finds it the
    same way the file loaders do. Only the indexed text uses it; the stored title stays as given.
    """
    return doc.title.strip() or extract_title(doc.text, max_chars=60) or ""


def passage_text(chunk: Chunk, title: str, title_in_chunk: bool = True) -> str:
    """What gets indexed for a chunk: the document title and heading path, then the chunk text.

    A chunk of a long document rarely repeats the title, yet questions often name it; carrying it
    into every chunk lets both BM25 and the encoder see it. The displayed and cited text stays
    the chunk's own. Pass :func:`index_title` of the document as ``title``.
    """
    parts: list[str] = []
    if title_in_chunk and title and not chunk.text.startswith(title):
        parts.append(title)
    if chunk.heading:
        heading = chunk.heading.split(" > ")[-1] if title_in_chunk else chunk.heading
        if heading and not chunk.text.startswith(heading):
            parts.append(chunk.heading)
    parts.append(chunk.text)
    return "\n".join(parts)


def chunker_for(settings: Settings, encoder: PassageEncoder | None = None) -> Chunker:
    """The structure-aware chunker of the settings, capped by the encoder's token limit when
    the encoder counts tokens (``count_tokens`` and ``max_seq_length``)."""
    counter = getattr(encoder, "count_tokens", None)
    max_tokens = getattr(encoder, "max_seq_length", None)
    return Chunker(
        max_chars=settings.chunk_max_chars,
        overlap_chars=settings.chunk_overlap_chars,
        min_chars=settings.chunk_min_chars,
        token_counter=counter,
        max_tokens=(max_tokens - 16) if counter and max_tokens else None,
    )


def dedupe_documents(documents: Iterable[Document]) -> list[Document]:
    """The documents with each id once (the later one kept, with a warning)."""
    seen: dict[str, Document] = {}
    for doc in documents:
        if doc.id in seen:
            logger.warning("document id %s appears twice; the later one is kept", doc.id)
        seen[doc.id] = doc
    return list(seen.values())


def batches(
    documents: Sequence[Document], max_chars: int = INDEX_BATCH_CHARS
) -> Iterator[Sequence[Document]]:
    """Consecutive runs of documents of about ``max_chars`` characters each (at least one)."""
    start, size = 0, 0
    for i, doc in enumerate(documents):
        size += len(doc.text)
        if size >= max_chars:
            yield documents[start : i + 1]
            start, size = i + 1, 0
    if start < len(documents):
        yield documents[start:]


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A document split for indexing: its chunks and the passage text of each."""

    document: Document
    chunks: list[Chunk]
    texts: list[str]


class IndexingPlan:
    """Chunking, passage texts and embedding, as both writers do them (see the module doc).

    :param settings: the chunking, title and embedding settings (and whether the reranker reads
        sentence vectors, :attr:`~policyqa.settings.Settings.embeds_sentence_vectors`).
    :param encoder: the warmed dense encoder.
    """

    def __init__(self, settings: Settings, encoder: PassageEncoder) -> None:
        self.settings = settings
        self.encoder = encoder
        self.chunker = chunker_for(settings, encoder)
        self.batch_size = max(64, settings.embed_batch_size)

    @property
    def embeds_sentences(self) -> bool:
        """Whether each chunk's sentences are embedded into the cache (the sentence reranker's)."""
        return self.settings.embeds_sentence_vectors

    def prepare(self, doc: Document) -> PreparedDocument:
        """The document's chunks and their passage texts."""
        chunks = self.chunker.split(doc)
        title = index_title(doc)
        return PreparedDocument(
            doc, chunks, [passage_text(c, title, self.settings.title_in_chunk) for c in chunks]
        )

    def open_cache(self) -> EmbeddingCache:
        """The embedding cache of the encoder (close it when done)."""
        return EmbeddingCache(self.settings.embedding_cache_dir, self.encoder.model_id)

    def embed(self, texts: Sequence[str], cache: EmbeddingCache) -> tuple[npt.NDArray[np.float16], int]:
        """Passage vectors of ``texts`` (cached ones read) and how many were embedded anew."""
        return embed_with_cache(self.encoder, list(texts), cache, batch_size=self.batch_size)

    def embed_sentences(self, prepared: Iterable[PreparedDocument], cache: EmbeddingCache) -> tuple[int, int]:
        """Embed every chunk's sentences into the cache (nothing when the reranker reads none):
        ``(sentences, embedded anew)``."""
        if not self.embeds_sentences:
            return 0, 0
        sentences = [s for p in prepared for c in p.chunks for s in embedding_sentences(c.text)]
        _, embedded = embed_with_cache(self.encoder, sentences, cache, batch_size=self.batch_size)
        return len(sentences), embedded
