"""The embedded backend: an index as files under a directory of generations.

:func:`build_embedded_index`, :func:`add_embedded_documents` and :func:`delete_embedded_documents`
write a complete new generation (:mod:`policyqa.index.layout`) and switch to it; an add reuses
the base generation's BM25 segments, stored chunks and vectors, and embeds only new text (the
:class:`~policyqa.index.ingest.IndexingPlan` both backends follow). :func:`open_embedded_index`
loads the current generation as an :class:`EmbeddedIndex`: the SQLite chunk store, the BM25
postings of chunks and of whole documents, the faiss index, the tokenizer and the encoder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm.auto import tqdm

from policyqa import __version__
from policyqa.corpus.models import Document
from policyqa.settings import Settings

from .bm25 import BM25Index
from .dense import DenseIndex, PassageEncoder, text_hash
from .encoder import encoder_for
from .ingest import PASSAGE_TEMPLATE_VERSION, IndexingPlan, batches, dedupe_documents
from .layout import INDEX_FORMAT, IndexLayout, IndexVersionError
from .store import ChunkStore
from .tokenizer import ChineseTokenizer, tokenize_parallel

__all__ = [
    "EmbeddedIndex",
    "add_embedded_documents",
    "build_embedded_index",
    "delete_embedded_documents",
    "index_config",
    "open_embedded_index",
]

logger = logging.getLogger(__name__)


def _fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def index_config(settings: Settings, encoder: PassageEncoder, tokenizer: ChineseTokenizer) -> dict[str, Any]:
    """Everything that determines the index contents (its fingerprint is stored in the manifest)."""
    return {
        "model": {
            "name": getattr(encoder, "model_name", None) or settings.model,
            "model_id": encoder.model_id,
            "dim": encoder.dim,
        },
        "tokenizer": tokenizer.config(),
        "chunking": {
            "max_chars": settings.chunk_max_chars,
            "overlap_chars": settings.chunk_overlap_chars,
            "min_chars": settings.chunk_min_chars,
            "title_in_chunk": settings.title_in_chunk,
            "passage_template": PASSAGE_TEMPLATE_VERSION,
        },
        "bm25": {"k1": settings.bm25_k1, "b": settings.bm25_b, "method": settings.bm25_method},
    }


# -- writing ----------------------------------------------------------------------------------
def _write_generation(
    layout: IndexLayout,
    settings: Settings,
    new_docs: Sequence[Document],
    drop_ids: set[str],
    base: Path | None,
    encoder: PassageEncoder | None,
    show_progress: bool,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    stage: dict[str, float] = {}
    tokenizer = ChineseTokenizer.from_settings(settings)
    tokenizer.warm_up()
    if encoder is None:
        encoder = encoder_for(settings)
    encoder.warm_up()
    config = index_config(settings, encoder, tokenizer)
    fingerprint = _fingerprint(config)
    if base is not None:
        old_manifest = layout.read_manifest(base)
        if old_manifest.get("fingerprint") != fingerprint:
            raise IndexVersionError(
                f"the index at {layout.root} was built with other settings (model, tokenizer or chunking) "
                "than the current ones; rebuild it from all documents with `policyqa index --rebuild …` "
                "or restore the settings it was built with"
            )
    plan = IndexingPlan(settings, encoder)
    workdir = layout.new_workdir()
    try:
        store_path = workdir / "store.sqlite"
        kept_rows: list[int] = []
        kept_docs: list[int] = []
        old_ids: list[str] = []
        old_chunk_count = 0
        appended_only = False
        if base is not None:
            old_store = ChunkStore(base / "store.sqlite", readonly=True)
            try:
                old_ids = old_store.doc_ids()
                old_chunk_count = old_store.count_chunks()
                appended_only = not (drop_ids & set(old_ids))
                kept_docs = [i for i, d in enumerate(old_ids) if d not in drop_ids]
                if appended_only:
                    # nothing removed: the rows keep their numbers, so the file is copied as it is
                    kept_rows = list(range(old_chunk_count))
                else:
                    kept_rows = old_store.rows_of([d for d in old_ids if d not in drop_ids])
            finally:
                old_store.close()
            if appended_only:
                shutil.copyfile(base / "store.sqlite", store_path)
                store = ChunkStore(store_path)
            else:
                old_store = ChunkStore(base / "store.sqlite", readonly=True)
                try:
                    store = old_store.copy_to(store_path, drop_doc_ids=drop_ids)
                finally:
                    old_store.close()
        else:
            store = ChunkStore(store_path)

        # BM25: the base generation's segments minus removed rows; the new rows are appended as
        # they are tokenized (scores stay equal to a full rebuild's, see policyqa.index.bm25)
        t = time.perf_counter()
        bm25 = _base_bm25(base, "bm25", settings.bm25_method, settings, store, kept_rows, old_chunk_count)
        # whole documents: Lucene idf, which stays positive in collections of a handful of documents
        doc_bm25 = _base_bm25(base, "bm25_docs", "lucene", settings, store, kept_docs, len(old_ids))
        stage["bm25_s"] = time.perf_counter() - t

        # dense: old rows' vectors are reused, new ones come from the cache or the encoder
        old_dense: DenseIndex | None = None
        if base is not None and kept_rows:
            old_dense = DenseIndex.load(base / "dense", mmap=not appended_only)
            old_emb = np.asarray(
                old_dense.embeddings[np.asarray(kept_rows, dtype=np.int64)], dtype=np.float16
            )
        else:
            old_emb = np.zeros((0, encoder.dim), dtype=np.float16)

        # the new documents, a batch at a time: chunk, tokenize chunks and whole documents (in
        # parallel), store, add to BM25, embed. Nothing holds every new chunk's tokens at once.
        for key in ("chunk_s", "tokenize_s", "embed_s"):
            stage[key] = 0.0
        # the default reranker's sentence vectors go to the embedding cache (not the index): they
        # are keyed by text, so add/delete/merge need nothing, and a reranker finds them by text
        if plan.embeds_sentences:
            stage["sentence_embed_s"] = 0.0
        new_parts: list[npt.NDArray[np.float16]] = []
        n_new_chunks = n_embedded = n_sentences = n_sentences_embedded = 0
        cache = plan.open_cache()
        try:
            with (
                tqdm(total=len(new_docs), desc="index", unit="doc", disable=not show_progress) as bar,
                bm25.appender() as chunk_terms,
                doc_bm25.appender() as doc_terms,
            ):
                for batch in batches(new_docs):
                    t = time.perf_counter()
                    prepared = [plan.prepare(doc) for doc in batch]
                    stage["chunk_s"] += time.perf_counter() - t
                    t = time.perf_counter()
                    new_texts = [text for p in prepared for text in p.texts]
                    to_tokenize = new_texts + [f"{p.document.title}\n{p.document.text}" for p in prepared]
                    joined = tokenize_parallel(tokenizer, to_tokenize, settings.index_workers)
                    pos = 0
                    for i, p in enumerate(prepared):
                        tokens = joined[pos : pos + len(p.chunks)]
                        pos += len(p.chunks)
                        doc_tokens = joined[len(new_texts) + i]
                        store.add(p.document, p.chunks, tokens, [text_hash(x) for x in p.texts], doc_tokens)
                        for x in tokens:
                            chunk_terms.add(x.split(" ") if x else [])
                        doc_terms.add(doc_tokens.split(" ") if doc_tokens else [])
                    stage["tokenize_s"] += time.perf_counter() - t
                    t = time.perf_counter()
                    vecs, embedded = plan.embed(new_texts, cache)
                    new_parts.append(vecs)
                    n_new_chunks += len(new_texts)
                    n_embedded += embedded
                    stage["embed_s"] += time.perf_counter() - t
                    if plan.embeds_sentences:
                        t = time.perf_counter()
                        sentences, embedded = plan.embed_sentences(prepared, cache)
                        n_sentences += sentences
                        n_sentences_embedded += embedded
                        stage["sentence_embed_s"] += time.perf_counter() - t
                    bar.update(len(batch))
        finally:
            cache.close()
        store.commit()
        t = time.perf_counter()
        bm25.merge_small_segments()
        doc_bm25.merge_small_segments()
        bm25.save(workdir / "bm25")
        doc_bm25.save(workdir / "bm25_docs")
        stage["bm25_s"] += time.perf_counter() - t

        t = time.perf_counter()
        new_emb = np.concatenate(new_parts) if new_parts else np.zeros((0, encoder.dim), dtype=np.float16)
        del new_parts
        if appended_only and old_dense is not None:
            dense = old_dense  # grows in place: an IVF index is not retrained for an append
            dense.extend(new_emb)
        else:
            emb: npt.NDArray[np.float16] = np.concatenate([old_emb, new_emb]) if len(old_emb) else new_emb
            dense = DenseIndex(encoder.dim, nprobe=settings.ann_nprobe)
            dense.build(emb)
        dense.save(workdir / "dense")
        stage["dense_s"] = time.perf_counter() - t

        n_docs, n_chunks = store.count_documents(), store.count_chunks()
        store.close()
        if n_chunks != dense.size or n_chunks != bm25.size:
            raise RuntimeError(
                f"index parts disagree: {n_chunks} chunks, {bm25.size} BM25 rows, {dense.size} vectors"
            )
        manifest: dict[str, Any] = {
            "format": INDEX_FORMAT,
            "policyqa_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **config,
            "fingerprint": fingerprint,
            "counts": {"documents": n_docs, "chunks": n_chunks},
            "last_change": {
                "added_documents": len(new_docs),
                "removed_documents": len(drop_ids),
                "new_chunks": n_new_chunks,
                "embedded": n_embedded,
                "embedding_cache_hits": n_new_chunks - n_embedded,
                **(
                    {"sentences": n_sentences, "sentences_embedded": n_sentences_embedded}
                    if plan.embeds_sentences
                    else {}
                ),
            },
            "build_seconds": round(time.perf_counter() - t0, 3),
            "stage_seconds": {k: round(v, 3) for k, v in stage.items()},
        }
        (workdir / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        layout.commit(workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    logger.info(
        "indexed %d documents, %d chunks (%d embedded, %d from cache) in %.1fs",
        manifest["counts"]["documents"],
        n_chunks,
        n_embedded,
        n_new_chunks - n_embedded,
        manifest["build_seconds"],
    )
    return manifest


def _base_bm25(
    base: Path | None,
    name: str,
    method: str,
    settings: Settings,
    store: ChunkStore,
    kept: Sequence[int],
    old_count: int,
) -> BM25Index:
    """The BM25 index ``name`` that the new generation starts from: the base's minus dropped
    rows (segments reused), or an empty one.

    An index written by an older policyqa (another BM25 format) is rebuilt from the tokens the
    store keeps (``store`` holds exactly the kept rows at this point), so updating it works.
    """
    if base is not None:
        try:
            index = BM25Index.load(base / name, mmap=True)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            logger.info("rebuilding %s from the stored tokens (%s)", name, exc)
        else:
            if len(kept) != old_count:
                keep = np.zeros(old_count, dtype=bool)
                keep[np.asarray(kept, dtype=np.int64)] = True
                index.drop_rows(keep)
            return index
    if base is not None:
        return _bm25_from_store(store, name, method, settings)
    return BM25Index(k1=settings.bm25_k1, b=settings.bm25_b, method=method)


def _bm25_from_store(store: ChunkStore, name: str, method: str, settings: Settings) -> BM25Index:
    """BM25 index ``name`` (chunks ``bm25`` or documents ``bm25_docs``) built from the tokens the
    store keeps: how an index written in an older BM25 format is brought up to date."""
    index = BM25Index(k1=settings.bm25_k1, b=settings.bm25_b, method=method)
    index.build(store.iter_tokens() if name == "bm25" else store.iter_doc_tokens())
    return index


def _load_bm25(
    gen: Path, name: str, method: str, settings: Settings, store: ChunkStore, mmap: bool
) -> BM25Index:
    """Load a generation's BM25 index; one in an older format is rebuilt in memory from the store."""
    try:
        return BM25Index.load(gen / name, mmap=mmap)
    except ValueError as exc:
        logger.warning(
            "%s/%s was written by an older policyqa: rebuilt in memory from the stored tokens "
            "(the next `policyqa index` on it stores the new format)",
            gen,
            name,
        )
        logger.debug("BM25 load error: %s", exc)
    return _bm25_from_store(store, name, method, settings)


def build_embedded_index(
    documents: Iterable[Document],
    index_dir: Path,
    settings: Settings,
    *,
    show_progress: bool = True,
    encoder: PassageEncoder | None = None,
) -> dict[str, Any]:
    """Write a new index from ``documents`` (replacing any index there); returns the manifest."""
    docs = dedupe_documents(documents)
    layout = IndexLayout(index_dir)
    with layout.writer_lock():
        return _write_generation(layout, settings, docs, set(), None, encoder, show_progress)


def add_embedded_documents(
    documents: Iterable[Document],
    index_dir: Path,
    settings: Settings,
    *,
    show_progress: bool = True,
    encoder: PassageEncoder | None = None,
) -> dict[str, Any]:
    """Add documents to an existing index (a document whose id exists replaces it)."""
    docs = dedupe_documents(documents)
    layout = IndexLayout(index_dir)
    with layout.writer_lock():
        base = layout.current()
        return _write_generation(layout, settings, docs, {d.id for d in docs}, base, encoder, show_progress)


def delete_embedded_documents(
    doc_ids: Iterable[str],
    index_dir: Path,
    settings: Settings,
    *,
    encoder: PassageEncoder | None = None,
) -> dict[str, Any]:
    """Remove documents by id; unknown ids raise ``KeyError`` and change nothing."""
    ids = list(dict.fromkeys(doc_ids))
    layout = IndexLayout(index_dir)
    with layout.writer_lock():
        base = layout.current()
        store = ChunkStore(base / "store.sqlite", readonly=True)
        try:
            missing = [i for i in ids if not store.has_document(i)]
        finally:
            store.close()
        if missing:
            raise KeyError(f"no document with id {', '.join(missing)} in the index")
        return _write_generation(layout, settings, [], set(ids), base, encoder, show_progress=False)


class EmbeddedIndex:
    """A loaded index generation (:func:`open_embedded_index`): its store, BM25 and dense
    indexes, tokenizer and encoder; an :class:`~policyqa.index.base.OpenIndex`."""

    def __init__(
        self,
        root: Path,
        generation: Path,
        manifest: dict[str, Any],
        settings: Settings,
        store: ChunkStore,
        bm25: BM25Index,
        dense: DenseIndex,
        tokenizer: ChineseTokenizer,
        encoder: PassageEncoder,
        doc_bm25: BM25Index | None = None,
    ) -> None:
        self.root = root
        self.generation = generation
        self.manifest = manifest
        self.settings = settings
        self.store = store
        self.bm25 = bm25
        self.dense = dense
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.doc_bm25 = doc_bm25

    @property
    def version(self) -> str:
        """The generation's name (what the service reports as the index version)."""
        return self.generation.name

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_embedded_index(
    index_dir: Path,
    settings: Settings,
    *,
    encoder: PassageEncoder | None = None,
    mmap: bool = True,
) -> EmbeddedIndex:
    """Load the current generation of an embedded index, with the encoder it was built with.

    With ``mmap`` (the default) the BM25 postings and the float16 embeddings stay in their files
    and are paged in as queries touch them: several processes serving one index share the pages,
    and an IVF index (whose faiss structure holds its own copy of the vectors) does not keep a
    second copy in memory.
    """
    layout = IndexLayout(index_dir)
    gen = layout.current()
    manifest = layout.read_manifest(gen)
    tokenizer = ChineseTokenizer.from_settings(settings)
    tokenizer.warm_up()
    if tokenizer.config() != manifest.get("tokenizer"):
        logger.warning(
            "the tokenizer settings differ from those the index at %s was built with; "
            "rebuild it for consistent BM25 results",
            index_dir,
        )
    if encoder is None:
        encoder = encoder_for(settings, model=manifest["model"]["name"])
    encoder.warm_up()
    if encoder.dim != manifest["model"]["dim"]:
        raise IndexVersionError(
            f"the index was built with a {manifest['model']['dim']}-dimensional model "
            f"({manifest['model']['name']}), the encoder gives {encoder.dim}; rebuild the index"
        )
    store = ChunkStore(gen / "store.sqlite", readonly=True)
    bm25 = _load_bm25(
        gen, "bm25", str(manifest.get("bm25", {}).get("method", "okapi")), settings, store, mmap
    )
    dense = DenseIndex.load(gen / "dense", mmap=mmap, nprobe=settings.ann_nprobe)
    doc_bm25 = _load_bm25(gen, "bm25_docs", "lucene", settings, store, mmap)
    return EmbeddedIndex(
        Path(index_dir), gen, manifest, settings, store, bm25, dense, tokenizer, encoder, doc_bm25
    )
