"""Milvus backend: documents, chunks and metadata in Milvus collections.

The same documents give the same chunks, passage texts and vectors as the embedded index: both
writers follow the one :class:`~policyqa.index.ingest.IndexingPlan` (chunker, passage text,
encoder and embedding cache; vectors are rounded to float16 first, as the embedded dense index
stores them). A :class:`MilvusIndex` is an :class:`~policyqa.index.base.OpenIndex`; its
retrievers come from :func:`policyqa.retriever.factory.retriever_for`.

Collections (``settings.milvus_collection``, default ``policyqa``):

``<name>`` — one row per chunk
    ``chunk_id`` (primary key), ``doc_id``, ``doc_seq``/``ordinal`` (index order, the tie-break),
    ``start``/``end``/``heading``/``text`` (the cited passage), the document's ``title``,
    ``doc_number``, ``issuer``, ``date``, ``date_int`` (``YYYYMMDD``, 0 without a valid date),
    ``doc_type``, ``region``, ``source``; ``bm25_text`` (the passage text, analysed by Milvus'
    jieba tokenizer with the policy-term dictionary and the stopwords), ``sparse`` (output of
    Milvus' built-in **BM25 function** over ``bm25_text``) and ``dense`` (the embedding); with
    ``settings.char_bigrams`` also ``bigram_text`` (the passage's character bigrams,
    :meth:`ChineseTokenizer.bigrams`, space-joined and split by Milvus' ``whitespace``
    tokenizer) and ``bigram_sparse`` (a second BM25 function, over ``bigram_text``).
``<name>_docs`` — one row per document part
    the whole document (title, metadata, extra metadata as JSON, text in parts of at most
    :data:`DOC_PART_CHARS` characters, :data:`DOC_PART_CHARS_BIGRAMS` with bigrams, since a
    VARCHAR holds at most 65,535 bytes) with the same BM25 function(s): the document-level
    context of the hybrid fusion (a document scores as its best part).

Text for BM25 is normalised on the client first exactly as the embedded tokenizer does (NFKC,
traditional → simplified, lower case) and characters that are neither letters nor digits are
blanked (the embedded tokenizer drops such tokens); jieba in Milvus then segments it in search
mode. The embedded index also indexes character bigrams (``settings.char_bigrams``, on by
default); Milvus' analyzers cannot produce them from the text, so the client writes them into
their own field with its own BM25 function, and a chunk's BM25 score is the sum of its word
score and its bigram score (the embedded index scores words and bigrams as one bag of terms;
both reward the same matches). A BM25 search takes the best ``depth`` chunks of each field,
scores the union on both fields exactly and keeps the best ``depth`` of the sums. Without
``char_bigrams`` there is no bigram field and BM25 is over the jieba words alone.
Where the embedded index uses BM25 Okapi (rank-bm25's idf), Milvus uses the Lucene idf
``log(1 + (N - n + 0.5) / (n + 0.5))``; ``k1`` and ``b`` come from the settings.

Connection: ``settings.milvus_uri`` (``http://host:19530`` for standalone or a cluster's proxy,
``https://…`` for a managed one) with ``settings.milvus_token``; with no URI, Milvus Lite in the
file ``<index_dir>-milvus.db`` beside the index directory (started in-process by pymilvus).

Milvus Lite 3.2 (pure Python) differences, handled here: BM25 distances come back negative
(scores are taken as ``abs``), LIKE has no escape for ``%``/``_`` (such filter values are widened
to ``_`` wildcards and checked again on the client), BM25 statistics are per segment, jieba's
``dict`` words are added to the process-wide jieba dictionary, and it has no ``whitespace``
tokenizer: a server that reports itself as Milvus Lite gets the ``standard`` one for the bigram
field, which in Lite splits at non-word characters and so yields the same bigrams.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.corpus.models import Chunk, Document
from policyqa.settings import Settings

from .dense import PassageEncoder
from .encoder import encoder_for
from .ingest import IndexingPlan, dedupe_documents
from .tokenizer import ChineseTokenizer, normalize_text

__all__ = [
    "DOC_PART_CHARS",
    "HIT_FIELDS",
    "META_FIELDS",
    "DOC_PART_CHARS_BIGRAMS",
    "MilvusBackendError",
    "MilvusDocuments",
    "MilvusIndex",
    "analyzer_params",
    "bigram_analyzer_params",
    "bigram_text",
    "bm25_text",
    "build_milvus_index",
    "connect",
    "date_int",
    "describe_milvus",
    "is_milvus_error",
    "milvus_error_line",
    "milvus_exists",
    "milvus_uri",
    "open_milvus_index",
    "quote",
    "string_list",
    "where",
]

logger = logging.getLogger(__name__)

#: A document's metadata fields, stored on every chunk row and every document row.
META_FIELDS = ("title", "doc_number", "issuer", "date", "doc_type", "region", "source")
#: The fields a search hit is made of (:class:`policyqa.retriever.base.Hit`).
HIT_FIELDS = ("chunk_id", "doc_id", "doc_seq", "ordinal", "start", "end", "heading", "text", *META_FIELDS)

#: Characters of document text per row of the documents collection (UTF-8 ≤ 4 bytes a char).
DOC_PART_CHARS = 16_000
#: The same with character bigrams: a part's bigram text takes up to 7 bytes a character.
DOC_PART_CHARS_BIGRAMS = 8_000
_VARCHAR_MAX = 65_535
_INSERT_BATCH = 512
#: Characters jieba keeps inside one block (``jieba.re_han_default``) besides letters and digits.
_JIEBA_INNER = frozenset("+#&._%-")

# VARCHAR limits of the schema (bytes)
_LIMITS = {
    "chunk_id": 256,
    "doc_id": 1024,
    "heading": 4096,
    "text": _VARCHAR_MAX,
    "bm25_text": _VARCHAR_MAX,
    "bigram_text": _VARCHAR_MAX,
    "title": 4096,
    "doc_number": 512,
    "issuer": 2048,
    "date": 64,
    "doc_type": 512,
    "region": 512,
    "source": 4096,
    "part_id": 1100,
}


def is_milvus_error(exc: BaseException) -> bool:
    """The Milvus backend's errors and pymilvus' own (a server gone away mid-command)."""
    return isinstance(exc, MilvusBackendError) or type(exc).__module__.startswith("pymilvus")


def milvus_error_line(exc: BaseException) -> str:
    """A Milvus error on one line (pymilvus' own are labelled as such; never a token)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, MilvusBackendError) else f"Milvus error: {text}"


class MilvusBackendError(RuntimeError):
    """The Milvus backend cannot do what was asked (connection, schema or model mismatch)."""


# --------------------------------------------------------------------------------------------
# text and values


def bm25_text(text: str) -> str:
    """The text Milvus analyses for BM25: normalised like the embedded tokenizer, punctuation blanked.

    jieba yields every character outside its word blocks as a token of its own; the embedded
    tokenizer drops tokens without a letter or digit, so here those characters become spaces
    (which jieba skips). Symbols jieba keeps inside words (``3.5``, ``covid-19``) stay.
    """
    out = []
    for ch in normalize_text(text):
        if ch.isspace() or ch in _JIEBA_INNER or unicodedata.category(ch)[0] in "LN":
            out.append(ch)
        else:
            out.append(" ")
    return "".join(out)


def date_int(value: str | None) -> int:
    """``YYYYMMDD`` of an ISO date (its first 10 characters), 0 when missing or invalid."""
    if not value:
        return 0
    try:
        d = date.fromisoformat(str(value)[:10])
    except ValueError:
        return 0
    return d.year * 10000 + d.month * 100 + d.day


def _clip(value: str | None, field: str) -> str:
    text = value or ""
    limit = _LIMITS[field]
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


def analyzer_params(tokenizer: ChineseTokenizer) -> dict[str, Any]:
    """Milvus analyzer: jieba (search mode, default dictionary + the policy terms) and stopwords."""
    words: list[str] = ["_default_"]
    for path in tokenizer._dict_paths():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            word = line.strip().split(" ")[0] if line.strip() else ""
            if word and not word.startswith("#"):
                words.append(normalize_text(word))
    return {
        "tokenizer": {"type": "jieba", "mode": "search", "hmm": True, "dict": list(dict.fromkeys(words))},
        "filter": [{"type": "stop", "stop_words": sorted(tokenizer.stopwords)}],
    }


def bigram_text(tokenizer: ChineseTokenizer, text: str) -> str:
    """The text of the bigram field: :meth:`ChineseTokenizer.bigrams` of ``text``, space-joined."""
    return " ".join(tokenizer.bigrams(text))


def bigram_analyzer_params(lite: bool = False) -> dict[str, Any]:
    """Analyzer of the bigram field: split at whitespace (Milvus Lite: ``standard``, see above)."""
    return {"tokenizer": "standard" if lite else "whitespace"}


def milvus_uri(settings: Settings, index_dir: Path | None = None) -> str:
    """The URI to connect to: ``settings.milvus_uri``, else Milvus Lite beside the index directory."""
    if settings.milvus_uri:
        return settings.milvus_uri
    root = Path(index_dir or settings.index_dir).expanduser().resolve()
    return str(root.parent / f"{root.name}-milvus.db")


def _is_lite(uri: str) -> bool:
    return uri.endswith(".db")


def where(uri: str) -> str:
    """The URI as shown in messages: a Lite file as it is, a server without any credentials."""
    return uri if _is_lite(uri) else uri.split("@")[-1]


def connect(settings: Settings, uri: str) -> Any:
    """A ``MilvusClient`` for ``uri`` with the settings' token and database.

    Raises :class:`MilvusBackendError` (one line, no credentials) when pymilvus is missing or
    the server cannot be reached.
    """
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise MilvusBackendError(
            "the milvus backend needs pymilvus (and milvus-lite for a local file): "
            "pip install 'pymilvus>=2.6' milvus-lite"
        ) from exc
    kwargs: dict[str, Any] = {"uri": uri}
    if _is_lite(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        # Milvus Lite serves in this process; its gRPC server logs every RPC it does not
        # implement (pymilvus' AllocTimestamp while waiting for an index) as an error
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    token = settings.milvus_token
    if token is not None and token.get_secret_value():
        kwargs["token"] = token.get_secret_value()
    if settings.milvus_db_name:
        kwargs["db_name"] = settings.milvus_db_name
    try:
        return MilvusClient(**kwargs)
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise MilvusBackendError(f"cannot connect to Milvus at {where(uri)}: {message}") from exc


# --------------------------------------------------------------------------------------------
# the index


class MilvusIndex:
    """A Milvus-backed index: build, add and delete documents; an :class:`~policyqa.index.base.OpenIndex`.

    Make one with :func:`open_milvus_index` (existing collections) or :func:`build_milvus_index`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        index_dir: Path | None = None,
        encoder: PassageEncoder | None = None,
        client: Any = None,
    ) -> None:
        self.settings = settings
        self.root = Path(index_dir or settings.index_dir).expanduser()
        self.uri = milvus_uri(settings, index_dir)
        self.collection = settings.milvus_collection
        self.docs_collection = f"{settings.milvus_collection}_docs"
        # connect first: an unreachable server fails before the model is loaded
        self.client = client if client is not None else self._connect()
        self.tokenizer = ChineseTokenizer.from_settings(settings)
        self.tokenizer.warm_up()
        self.encoder = encoder if encoder is not None else encoder_for(settings)
        self.encoder.warm_up()
        #: Whether the chunks carry the bigram BM25 field (the settings' ``char_bigrams`` for a
        #: new collection; what the collection holds once :meth:`check` has looked)
        self.bigrams = self.tokenizer.char_bigrams
        self._loaded = False
        #: The embedded index's BM25 statistics (term IDFs of the reranker and the answer
        #: selector); Milvus keeps its own inside the server, so there are none here
        self.bm25: Any = None
        #: What the embedded index's ``store`` offers: documents, their chunks, counts
        self.store = MilvusDocuments(self)

    # -- connection --------------------------------------------------------------------------
    def _connect(self) -> Any:
        return connect(self.settings, self.uri)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing must never raise
            logger.debug("closing the Milvus client failed", exc_info=True)

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------------------
    @property
    def doc_part_chars(self) -> int:
        """Characters of document text per row of the documents collection."""
        return DOC_PART_CHARS_BIGRAMS if self.bigrams else DOC_PART_CHARS

    def _config(self) -> dict[str, Any]:
        s = self.settings
        config: dict[str, Any] = {
            "model_id": self.encoder.model_id,
            "dim": self.encoder.dim,
            "tokenizer": self.tokenizer.fingerprint(),
            "chunking": [s.chunk_max_chars, s.chunk_overlap_chars, s.chunk_min_chars, s.title_in_chunk],
        }
        if self.tokenizer.char_bigrams:
            # collections built before the bigram field existed have the same tokenizer
            config["bm25_fields"] = ["words", "bigrams"]
        return config

    def _server_is_lite(self) -> bool:
        if _is_lite(self.uri):
            return True
        try:
            version = str(self.client.get_server_version())
        except Exception:  # a server without GetVersion is not Milvus Lite
            return False
        return version.lower().startswith("milvus_lite")

    def _schemas(self) -> tuple[Any, Any]:
        from pymilvus import DataType, MilvusClient

        analyzer = analyzer_params(self.tokenizer)
        config = json.dumps(self._config(), sort_keys=True)
        chunks = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=config)
        chunks.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=_LIMITS["chunk_id"])
        chunks.add_field("doc_id", DataType.VARCHAR, max_length=_LIMITS["doc_id"])
        chunks.add_field("doc_seq", DataType.INT64)
        chunks.add_field("ordinal", DataType.INT64)
        chunks.add_field("start", DataType.INT64)
        chunks.add_field("end", DataType.INT64)
        for name in ("heading", "text", *META_FIELDS):
            chunks.add_field(name, DataType.VARCHAR, max_length=_LIMITS[name])
        chunks.add_field("date_int", DataType.INT64)
        self._add_bm25_field(chunks, "bm25_text", "sparse", analyzer, "chunk_bm25")
        chunks.add_field("dense", DataType.FLOAT_VECTOR, dim=self.encoder.dim)
        bigrams = bigram_analyzer_params(self._server_is_lite()) if self.bigrams else None
        if bigrams is not None:
            self._add_bm25_field(chunks, "bigram_text", "bigram_sparse", bigrams, "chunk_bigram_bm25")
        docs = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=config)
        docs.add_field("part_id", DataType.VARCHAR, is_primary=True, max_length=_LIMITS["part_id"])
        docs.add_field("doc_id", DataType.VARCHAR, max_length=_LIMITS["doc_id"])
        docs.add_field("doc_seq", DataType.INT64)
        docs.add_field("part", DataType.INT64)
        docs.add_field("n_chunks", DataType.INT64)
        for name in ("title", "doc_number", "issuer", "date", "doc_type", "region", "source"):
            docs.add_field(name, DataType.VARCHAR, max_length=_LIMITS[name])
        docs.add_field("date_int", DataType.INT64)
        docs.add_field("extra", DataType.JSON)
        docs.add_field("text", DataType.VARCHAR, max_length=_VARCHAR_MAX)
        self._add_bm25_field(docs, "bm25_text", "sparse", analyzer, "doc_bm25")
        if bigrams is not None:
            self._add_bm25_field(docs, "bigram_text", "bigram_sparse", bigrams, "doc_bigram_bm25")
        return chunks, docs

    @staticmethod
    def _add_bm25_field(
        schema: Any, text_field: str, sparse_field: str, analyzer: dict[str, Any], function: str
    ) -> None:
        """An analysed text field, its sparse vector field and the BM25 function between them."""
        from pymilvus import DataType, Function, FunctionType

        schema.add_field(
            text_field,
            DataType.VARCHAR,
            max_length=_VARCHAR_MAX,
            enable_analyzer=True,
            analyzer_params=analyzer,
        )
        schema.add_field(sparse_field, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name=function,
                function_type=FunctionType.BM25,
                input_field_names=[text_field],
                output_field_names=[sparse_field],
            )
        )

    def _index_params(self, dense: bool) -> Any:
        s = self.settings
        params = self.client.prepare_index_params()
        for field in ("sparse", "bigram_sparse") if self.bigrams else ("sparse",):
            params.add_index(
                field_name=field,
                index_type="SPARSE_INVERTED_INDEX",
                metric_type="BM25",
                params={"bm25_k1": s.bm25_k1, "bm25_b": s.bm25_b},
            )
        if dense:
            kind = s.milvus_dense_index
            extra: dict[str, Any] = {"M": 16, "efConstruction": 200} if kind == "HNSW" else {}
            params.add_index(field_name="dense", index_type=kind, metric_type="IP", params=extra)
        return params

    def exists(self) -> bool:
        return bool(self.client.has_collection(self.collection)) and bool(
            self.client.has_collection(self.docs_collection)
        )

    def create(self) -> None:
        """(Re)create both collections, empty (with the bigram field when ``char_bigrams`` is on)."""
        self.bigrams = self.tokenizer.char_bigrams
        for name in (self.collection, self.docs_collection):
            if self.client.has_collection(name):
                self.client.drop_collection(name)
        chunks, docs = self._schemas()
        # Strong consistency: a search right after an add or a delete sees it, from any client
        # (Milvus' default, Bounded, may hide writes of the last seconds)
        self.client.create_collection(
            self.collection,
            schema=chunks,
            index_params=self._index_params(True),
            consistency_level="Strong",
        )
        self.client.create_collection(
            self.docs_collection,
            schema=docs,
            index_params=self._index_params(False),
            consistency_level="Strong",
        )
        self._loaded = False

    def check(self, *, strict: bool = False) -> None:
        """Raise when the collections are missing or were built with another model or tokenizer.

        Other settings (tokenizer, chunking, the bigram field) only log a warning, and searches use
        the BM25 fields the collection has; with ``strict`` they raise too (a cache rebuilds).
        """
        if not self.exists():
            raise MilvusBackendError(
                f"no policyqa collections {self.collection!r}/{self.docs_collection!r} at "
                f"{self._where()}; build them first (policyqa index with backend=milvus)"
            )
        info = self.client.describe_collection(self.collection)
        try:
            stored = json.loads(info.get("description") or "{}")
        except ValueError:
            stored = {}
        dim = next(
            (
                int(f.get("params", {}).get("dim", 0))
                for f in info.get("fields", [])
                if f.get("name") == "dense"
            ),
            0,
        )
        self.bigrams = any(f.get("name") == "bigram_sparse" for f in info.get("fields", []))
        if dim and dim != self.encoder.dim:
            raise MilvusBackendError(
                f"collection {self.collection!r} holds {dim}-dimensional vectors, the encoder gives "
                f"{self.encoder.dim}; rebuild it"
            )
        # Milvus Lite keeps no collection description: there only the fields can be compared
        if (stored and stored != self._config()) or self.bigrams != self.tokenizer.char_bigrams:
            if strict:
                raise MilvusBackendError(
                    f"collection {self.collection!r} was built with other settings (model, tokenizer, "
                    "chunking or BM25 fields) than the current ones"
                )
            logger.warning(
                "collection %s was built with other settings (model, tokenizer, chunking or BM25 "
                "fields) than the current ones; rebuild it for consistent results",
                self.collection,
            )

    def _where(self) -> str:
        return where(self.uri)

    @property
    def version(self) -> str:
        """What the service reports as the index version: the collection (its contents change
        in place, and every change is visible at once)."""
        return f"milvus:{self.collection}"

    @property
    def manifest(self) -> dict[str, Any]:
        """The embedded manifest's counterpart: backend, where, model, tokenizer, chunking, counts."""
        s = self.settings
        return {
            "backend": "milvus",
            "uri": self._where(),
            "collection": self.collection,
            "docs_collection": self.docs_collection,
            "fingerprint": hashlib.sha1(json.dumps(self._config(), sort_keys=True).encode()).hexdigest()[:16],
            "model": {
                "name": getattr(self.encoder, "model_name", None) or s.model,
                "model_id": self.encoder.model_id,
                "dim": self.encoder.dim,
            },
            "tokenizer": self.tokenizer.config(),
            "chunking": {
                "max_chars": s.chunk_max_chars,
                "overlap_chars": s.chunk_overlap_chars,
                "min_chars": s.chunk_min_chars,
                "title_in_chunk": s.title_in_chunk,
            },
            "bm25": {"k1": s.bm25_k1, "b": s.bm25_b, "method": "lucene", "bigram_field": self.bigrams},
            "dense_index": s.milvus_dense_index,
            "counts": {"documents": self.count_documents(), "chunks": self.count_chunks()},
        }

    def load(self) -> None:
        if not self._loaded:
            self.client.load_collection(self.collection)
            self.client.load_collection(self.docs_collection)
            self._loaded = True

    # -- writing -----------------------------------------------------------------------------
    def _rows(
        self, documents: Sequence[Document], seq0: int, show_progress: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, dict[str, float]]:
        stage: dict[str, float] = {}
        t = time.perf_counter()
        plan = IndexingPlan(self.settings, self.encoder)
        prepared = [plan.prepare(doc) for doc in documents]
        chunk_rows: list[dict[str, Any]] = []
        doc_rows: list[dict[str, Any]] = []
        texts: list[str] = []
        for i, (doc, chunks, passages) in enumerate((p.document, p.chunks, p.texts) for p in prepared):
            meta = doc.meta
            common = {
                "doc_id": _clip(doc.id, "doc_id"),
                "doc_seq": seq0 + i,
                "title": _clip(doc.title, "title"),
                "doc_number": _clip(meta.doc_number, "doc_number"),
                "issuer": _clip(meta.issuer, "issuer"),
                "date": _clip(meta.date, "date"),
                "doc_type": _clip(meta.doc_type, "doc_type"),
                "region": _clip(meta.region, "region"),
                "source": _clip(meta.source, "source"),
                "date_int": date_int(meta.date),
            }
            for c, text in zip(chunks, passages, strict=True):
                texts.append(text)
                chunk_rows.append(
                    {
                        **common,
                        "chunk_id": _clip(c.id, "chunk_id"),
                        "ordinal": c.ordinal,
                        "start": c.start,
                        "end": c.end,
                        "heading": _clip(c.heading, "heading"),
                        "text": _clip(c.text, "text"),
                        "bm25_text": _clip(bm25_text(text), "bm25_text"),
                    }
                )
                if self.bigrams:
                    chunk_rows[-1]["bigram_text"] = _clip(bigram_text(self.tokenizer, text), "bigram_text")
            full = doc.text
            size = self.doc_part_chars
            parts = [full[k : k + size] for k in range(0, max(len(full), 1), size)]
            for p, part in enumerate(parts):
                head = f"{doc.title}\n" if p == 0 else ""
                doc_rows.append(
                    {
                        **common,
                        "part_id": f"{_clip(doc.id, 'doc_id')}#{p}",
                        "part": p,
                        "n_chunks": len(chunks),
                        "extra": dict(meta.extra) if p == 0 else {},
                        "text": part,
                        "bm25_text": _clip(bm25_text(head + part), "bm25_text"),
                    }
                )
                if self.bigrams:
                    doc_rows[-1]["bigram_text"] = _clip(
                        bigram_text(self.tokenizer, head + part), "bigram_text"
                    )
        stage["chunk_s"] = time.perf_counter() - t
        t = time.perf_counter()
        cache = plan.open_cache()
        try:
            emb, n_embedded = plan.embed(texts, cache)
            stage["embed_s"] = time.perf_counter() - t
            if (
                plan.embeds_sentences
            ):  # the default reranker reads each chunk's sentence vectors from the cache
                t = time.perf_counter()
                plan.embed_sentences(prepared, cache)
                stage["sentence_embed_s"] = time.perf_counter() - t
        finally:
            cache.close()
        vectors = emb.astype(np.float32)
        for row, vec in zip(chunk_rows, vectors, strict=True):
            row["dense"] = vec.tolist()
        return chunk_rows, doc_rows, n_embedded, stage

    def _insert(self, chunk_rows: list[dict[str, Any]], doc_rows: list[dict[str, Any]]) -> float:
        t = time.perf_counter()
        for i in range(0, len(chunk_rows), _INSERT_BATCH):
            self.client.insert(self.collection, chunk_rows[i : i + _INSERT_BATCH])
        for i in range(0, len(doc_rows), 64):
            self.client.insert(self.docs_collection, doc_rows[i : i + 64])
        for name in (self.collection, self.docs_collection):
            try:
                self.client.flush(name)
            except Exception:  # Lite and managed Milvus may not implement flush
                logger.debug("flush of %s not supported", name, exc_info=True)
        return time.perf_counter() - t

    def build(self, documents: Iterable[Document], *, show_progress: bool = False) -> dict[str, Any]:
        """Replace the collections' contents with ``documents``; returns a manifest-like summary."""
        t0 = time.perf_counter()
        docs = dedupe_documents(documents)
        self.create()
        chunk_rows, doc_rows, n_embedded, stage = self._rows(docs, _seq_base(), show_progress)
        stage["insert_s"] = self._insert(chunk_rows, doc_rows)
        self.load()
        return self._summary(len(docs), 0, len(chunk_rows), n_embedded, stage, t0)

    def add_documents(self, documents: Iterable[Document], *, show_progress: bool = False) -> dict[str, Any]:
        """Add documents (a document whose id exists replaces it); only the new ones are embedded."""
        t0 = time.perf_counter()
        self.check()
        docs = dedupe_documents(documents)
        if not docs:
            return self._summary(0, 0, 0, 0, {}, t0)
        chunk_rows, doc_rows, n_embedded, stage = self._rows(docs, _seq_base(), show_progress)
        self._delete_ids([d.id for d in docs])
        stage["insert_s"] = self._insert(chunk_rows, doc_rows)
        self.load()
        return self._summary(len(docs), 0, len(chunk_rows), n_embedded, stage, t0)

    def delete_documents(self, doc_ids: Iterable[str]) -> dict[str, Any]:
        """Remove documents by id; unknown ids raise ``KeyError`` and change nothing."""
        t0 = time.perf_counter()
        self.check()
        self.load()
        ids = list(dict.fromkeys(doc_ids))
        present = self.present_documents(ids)
        missing = [i for i in ids if i not in present]
        if missing:
            raise KeyError(f"no document with id {', '.join(missing)} in the index")
        self._delete_ids(ids)
        return self._summary(0, len(ids), 0, 0, {}, t0)

    def _delete_ids(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), 500):
            expr = f"doc_id in {string_list(ids[i : i + 500])}"
            self.client.delete(self.collection, filter=expr)
            self.client.delete(self.docs_collection, filter=expr)

    def _summary(
        self, added: int, removed: int, new_chunks: int, embedded: int, stage: dict[str, float], t0: float
    ) -> dict[str, Any]:
        return {
            "backend": "milvus",
            "uri": self._where(),
            "collection": self.collection,
            "counts": {"documents": self.count_documents(), "chunks": self.count_chunks()},
            "last_change": {
                "added_documents": added,
                "removed_documents": removed,
                "new_chunks": new_chunks,
                "embedded": embedded,
                "embedding_cache_hits": new_chunks - embedded,
            },
            "build_seconds": round(time.perf_counter() - t0, 3),
            "stage_seconds": {k: round(v, 3) for k, v in stage.items()},
            "fingerprint": hashlib.sha1(json.dumps(self._config(), sort_keys=True).encode()).hexdigest()[:16],
            **self._config(),
        }

    # -- reading -----------------------------------------------------------------------------
    def _count(self, collection: str, expr: str) -> int:
        self.load()
        rows = self.client.query(collection, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def count_chunks(self) -> int:
        return self._count(self.collection, 'chunk_id != ""')

    def count_documents(self) -> int:
        return self._count(self.docs_collection, "part == 0")

    def present_documents(self, doc_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(doc_ids), 500):
            part = list(doc_ids[i : i + 500])
            rows = self.client.query(
                self.docs_collection,
                filter=f"doc_id in {string_list(part)} and part == 0",
                output_fields=["doc_id"],
            )
            found.update(str(r["doc_id"]) for r in rows)
        return found

    def get_document(self, doc_id: str) -> Document | None:
        """The stored document (text joined from its parts), or None."""
        from policyqa.corpus.models import DocMeta

        self.load()
        rows = self.client.query(
            self.docs_collection,
            filter=f"doc_id == {quote(doc_id)}",
            output_fields=["part", *META_FIELDS, "extra", "text"],
        )
        if not rows:
            return None
        rows.sort(key=lambda r: int(r["part"]))
        first = rows[0]
        meta = DocMeta(
            issuer=first["issuer"] or None,
            doc_number=first["doc_number"] or None,
            date=first["date"] or None,
            doc_type=first["doc_type"] or None,
            region=first["region"] or None,
            source=first["source"] or None,
            extra=dict(first.get("extra") or {}),
        )
        return Document(id=doc_id, title=first["title"], text="".join(r["text"] for r in rows), meta=meta)


class MilvusDocuments:
    """The documents and chunks of a :class:`MilvusIndex`, as the embedded ``ChunkStore`` offers
    them to the service, the CLI and the answer check (``index.store``)."""

    _META = ("title", "issuer", "doc_number", "date", "doc_type", "region", "source")

    def __init__(self, index: MilvusIndex) -> None:
        self._index = index

    def _query_all(self, collection: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``expr`` (paged: a plain query returns at most 16,384 rows)."""
        self._index.load()
        it = self._index.client.query_iterator(collection, batch_size=1000, filter=expr, output_fields=fields)
        rows: list[dict[str, Any]] = []
        try:
            while True:
                batch = it.next()
                if not batch:
                    break
                rows.extend(dict(r) for r in batch)
        finally:
            it.close()
        return rows

    def count_documents(self) -> int:
        return self._index.count_documents()

    def count_chunks(self) -> int:
        return self._index.count_chunks()

    def has_document(self, doc_id: str) -> bool:
        self._index.load()
        return bool(self._index.present_documents([doc_id]))

    def get_document(self, doc_id: str) -> Document | None:
        return self._index.get_document(doc_id)

    def _firsts(self, fields: list[str]) -> list[dict[str, Any]]:
        rows = self._query_all(self._index.docs_collection, "part == 0", ["doc_id", "doc_seq", *fields])
        rows.sort(key=lambda r: (int(r["doc_seq"]), str(r["doc_id"])))
        return rows

    def doc_ids(self) -> list[str]:
        """Every document id, in index order (the order they were added)."""
        return [str(r["doc_id"]) for r in self._firsts([])]

    def list_documents(self, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """One page of the documents in index order: id, title, metadata, chunk and character counts."""
        page = self._firsts([*self._META, "n_chunks"])[offset : offset + limit]
        if not page:
            return []
        chars: dict[str, int] = {}
        ids = [str(r["doc_id"]) for r in page]
        for i in range(0, len(ids), 100):
            for r in self._query_all(
                self._index.docs_collection, f"doc_id in {string_list(ids[i : i + 100])}", ["doc_id", "text"]
            ):
                chars[str(r["doc_id"])] = chars.get(str(r["doc_id"]), 0) + len(str(r["text"]))
        out = []
        for r in page:
            row: dict[str, Any] = {"doc_id": str(r["doc_id"])}
            for name in self._META:
                row[name] = r.get(name) or (None if name != "title" else "")
            row["n_chunks"] = int(r["n_chunks"])
            row["n_chars"] = chars.get(row["doc_id"], 0)
            out.append(row)
        return out

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The document's chunks in order (empty when there is no such document)."""
        rows = self._query_all(
            self._index.collection,
            f"doc_id == {quote(doc_id)}",
            ["chunk_id", "ordinal", "start", "end", "heading", "text"],
        )
        rows.sort(key=lambda r: int(r["ordinal"]))
        return [
            Chunk(
                id=str(r["chunk_id"]),
                doc_id=doc_id,
                text=str(r["text"]),
                start=int(r["start"]),
                end=int(r["end"]),
                heading=str(r["heading"] or ""),
                ordinal=int(r["ordinal"]),
            )
            for r in rows
        ]


# --------------------------------------------------------------------------------------------
# expressions


def quote(value: str) -> str:
    """A Milvus expression string literal: double-quoted, backslash and quote escaped."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def string_list(values: Sequence[str]) -> str:
    """``["a", "b"]`` with every value quoted."""
    return "[" + ", ".join(quote(v) for v in values) + "]"


def _seq_base() -> int:
    """Document sequence numbers grow with time, so later additions sort after earlier ones."""
    return time.time_ns() // 1000 * 1000


# --------------------------------------------------------------------------------------------
# entry points mirroring the pipeline


def build_milvus_index(
    documents: Iterable[Document],
    settings: Settings,
    *,
    index_dir: Path | None = None,
    encoder: PassageEncoder | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Build the Milvus collections from ``documents`` (replacing their contents); returns the summary."""
    with MilvusIndex(settings, index_dir=index_dir, encoder=encoder) as index:
        return index.build(documents, show_progress=show_progress)


def open_milvus_index(
    settings: Settings,
    *,
    index_dir: Path | None = None,
    encoder: PassageEncoder | None = None,
    strict: bool = False,
) -> MilvusIndex:
    """Connect to existing collections (checked against the encoder and tokenizer) and load them.

    ``strict``: collections built with other settings raise instead of logging a warning.
    """
    index = MilvusIndex(settings, index_dir=index_dir, encoder=encoder)
    try:
        index.check(strict=strict)
        index.load()
    except BaseException:
        index.close()
        raise
    return index


def milvus_exists(settings: Settings, *, index_dir: Path | None = None) -> bool:
    """Whether the policyqa collections exist (connects, but needs no encoder)."""
    uri = milvus_uri(settings, index_dir)
    if _is_lite(uri) and not Path(uri).exists():
        return False
    client = connect(settings, uri)
    try:
        name = settings.milvus_collection
        return bool(client.has_collection(name)) and bool(client.has_collection(f"{name}_docs"))
    finally:
        client.close()


def describe_milvus(settings: Settings, *, index_dir: Path | None = None) -> dict[str, Any]:
    """What ``policyqa info`` shows for the milvus backend: where, the collections' fields and
    counts (no encoder is loaded). Raises :class:`MilvusBackendError` when they do not exist."""
    uri = milvus_uri(settings, index_dir)
    name = settings.milvus_collection
    if _is_lite(uri) and not Path(uri).exists():
        raise MilvusBackendError(
            f"no policyqa collections {name!r}/{name}_docs at {where(uri)}; build them first "
            "(policyqa index with backend=milvus)"
        )
    client = connect(settings, uri)
    try:
        out: dict[str, Any] = {"backend": "milvus", "uri": where(uri), "collection": name}
        for coll in (name, f"{name}_docs"):
            if not client.has_collection(coll):
                raise MilvusBackendError(
                    f"no policyqa collections {name!r}/{name}_docs at {where(uri)}; build them first "
                    "(policyqa index with backend=milvus)"
                )
        info = client.describe_collection(name)
        fields = {str(f.get("name")): f for f in info.get("fields", [])}
        try:
            stored = json.loads(info.get("description") or "{}")
        except ValueError:
            stored = {}
        dim = int(fields.get("dense", {}).get("params", {}).get("dim", 0))
        for coll in (name, f"{name}_docs"):
            client.load_collection(coll)
        chunks = client.query(name, filter='chunk_id != ""', output_fields=["count(*)"])
        docs = client.query(f"{name}_docs", filter="part == 0", output_fields=["count(*)"])
        out.update(
            {
                "docs_collection": f"{name}_docs",
                "dim": dim,
                "bm25_fields": ["words", "bigrams"] if "bigram_sparse" in fields else ["words"],
                "dense_index": settings.milvus_dense_index,
                "built_with": stored or None,
                "counts": {
                    "documents": int(docs[0]["count(*)"]) if docs else 0,
                    "chunks": int(chunks[0]["count(*)"]) if chunks else 0,
                },
            }
        )
        return out
    finally:
        client.close()
