"""The chunk store: documents and chunks in SQLite.

Rows of the ``chunks`` table are numbered ``0..n-1``; the row number is the chunk's position in
the BM25 and dense indexes of the same index generation.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.corpus.models import Chunk, DocMeta, Document
from policyqa.corpus.pages import page_of

__all__ = ["ChunkRecord", "ChunkStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_idx INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    issuer TEXT, doc_number TEXT, date TEXT, doc_type TEXT, region TEXT, source TEXT,
    meta TEXT NOT NULL,
    tokens TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_idx INTEGER NOT NULL REFERENCES documents(doc_idx),
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    tokens TEXT NOT NULL,
    text_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_idx);
"""

_META_COLUMNS = ("issuer", "doc_number", "date", "doc_type", "region", "source")


@dataclass(slots=True, frozen=True)
class ChunkRecord:
    """A chunk joined with its document's citation fields."""

    row: int
    chunk: Chunk
    title: str
    meta: dict[str, Any]


class ChunkStore:
    """SQLite-backed documents and chunks. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._lock = threading.RLock()
        if readonly:
            if not path.is_file():
                raise FileNotFoundError(f"chunk store {path} is missing")
            uri = f"file:{path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.executescript(_SCHEMA)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
        self._db.row_factory = sqlite3.Row
        self._row_doc: npt.NDArray[np.int32] | None = None
        self._doc_meta: list[dict[str, Any]] | None = None
        self._doc_ids: list[str] | None = None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing -----------------------------------------------------------------------------
    def add(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        tokens: Sequence[str],
        hashes: Sequence[str],
        doc_tokens: str = "",
    ) -> None:
        """Append a document and its chunks (``tokens``: space-joined tokens per chunk;
        ``doc_tokens``: the whole document's, for the document-level BM25)."""
        meta = document.meta
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO documents"
                " (doc_id, title, text, issuer, doc_number, date, doc_type, region, source, meta, tokens)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    document.id,
                    document.title,
                    document.text,
                    meta.issuer,
                    meta.doc_number,
                    meta.date,
                    meta.doc_type,
                    meta.region,
                    meta.source,
                    json.dumps(meta.extra, ensure_ascii=False),
                    doc_tokens,
                ),
            )
            doc_idx = cur.lastrowid
            start_row = self.count_chunks()
            self._db.executemany(
                'INSERT INTO chunks (row, chunk_id, doc_idx, ordinal, start, "end", heading, text, tokens, text_hash)'
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        start_row + i,
                        c.id,
                        doc_idx,
                        c.ordinal,
                        c.start,
                        c.end,
                        c.heading,
                        c.text,
                        tokens[i],
                        hashes[i],
                    )
                    for i, c in enumerate(chunks)
                ],
            )
            self._row_doc = None

    def commit(self) -> None:
        with self._lock:
            self._db.commit()

    def copy_to(self, path: Path, drop_doc_ids: Iterable[str] = ()) -> ChunkStore:
        """A compacted copy without the given documents; rows renumbered ``0..n-1`` in order."""
        drop = set(drop_doc_ids)
        target = ChunkStore(path)
        with self._lock:
            docs = self._db.execute("SELECT * FROM documents ORDER BY doc_idx").fetchall()
            for d in docs:
                if d["doc_id"] in drop:
                    continue
                rows = self._db.execute(
                    'SELECT chunk_id, ordinal, start, "end", heading, text, tokens, text_hash FROM chunks'
                    " WHERE doc_idx=? ORDER BY row",
                    (d["doc_idx"],),
                ).fetchall()
                document = _document_from_row(d)
                chunks = [
                    Chunk(
                        id=r["chunk_id"],
                        doc_id=document.id,
                        text=r["text"],
                        start=r["start"],
                        end=r["end"],
                        heading=r["heading"],
                        ordinal=r["ordinal"],
                    )
                    for r in rows
                ]
                target.add(
                    document, chunks, [r["tokens"] for r in rows], [r["text_hash"] for r in rows], d["tokens"]
                )
        target.commit()
        return target

    # -- reading -----------------------------------------------------------------------------
    def count_chunks(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def count_documents(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def doc_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT doc_id FROM documents ORDER BY doc_idx")]

    def has_document(self, doc_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM documents WHERE doc_id=?", (doc_id,)).fetchone() is not None
            )

    def rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        ids = list(doc_ids)
        if not ids:
            return []
        with self._lock:
            marks = ",".join("?" * len(ids))
            return [
                int(r[0])
                for r in self._db.execute(
                    f"SELECT c.row FROM chunks c JOIN documents d ON c.doc_idx=d.doc_idx WHERE d.doc_id IN ({marks})"
                    " ORDER BY c.row",
                    ids,
                )
            ]

    def iter_tokens(self) -> Iterator[list[str]]:
        """Token lists of all chunks in row order."""
        with self._lock:
            rows = self._db.execute("SELECT tokens FROM chunks ORDER BY row").fetchall()
        for r in rows:
            yield r[0].split(" ") if r[0] else []

    def iter_doc_tokens(self) -> Iterator[list[str]]:
        """Token lists of all documents in document order (the rows of the document BM25)."""
        with self._lock:
            rows = self._db.execute("SELECT tokens FROM documents ORDER BY doc_idx").fetchall()
        for r in rows:
            yield r[0].split(" ") if r[0] else []

    def row_documents(self) -> npt.NDArray[np.int32]:
        """For every chunk row, the position of its document in document order."""
        self._load_filter_data()
        assert self._row_doc is not None
        return self._row_doc

    def text_hashes(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT text_hash FROM chunks ORDER BY row")]

    def get_document(self, doc_id: str) -> Document | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return None if row is None else _document_from_row(row)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        with self._lock:
            rows = self._db.execute(
                'SELECT c.chunk_id, c.ordinal, c.start, c."end", c.heading, c.text FROM chunks c'
                " JOIN documents d ON c.doc_idx=d.doc_idx WHERE d.doc_id=? ORDER BY c.row",
                (doc_id,),
            ).fetchall()
        return [
            Chunk(
                id=r["chunk_id"],
                doc_id=doc_id,
                text=r["text"],
                start=r["start"],
                end=r["end"],
                heading=r["heading"],
                ordinal=r["ordinal"],
            )
            for r in rows
        ]

    def list_documents(self, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT d.doc_id, d.title, d.issuer, d.doc_number, d.date, d.doc_type, d.region, d.source,"
                " (SELECT COUNT(*) FROM chunks c WHERE c.doc_idx=d.doc_idx) AS n_chunks, length(d.text) AS n_chars"
                " FROM documents d ORDER BY d.doc_idx LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [dict(r) for r in rows]

    def records(self, rows: Sequence[int]) -> list[ChunkRecord]:
        """Chunks with their documents' citation fields, in the order of ``rows``."""
        if not rows:
            return []
        with self._lock:
            marks = ",".join("?" * len(rows))
            found = self._db.execute(
                'SELECT c.row, c.chunk_id, c.ordinal, c.start, c."end", c.heading, c.text,'
                " d.doc_id, d.title, d.issuer, d.doc_number, d.date, d.doc_type, d.region, d.source,"
                " json_extract(d.meta, '$.page_starts') AS page_starts"
                f" FROM chunks c JOIN documents d ON c.doc_idx=d.doc_idx WHERE c.row IN ({marks})",
                [int(r) for r in rows],
            ).fetchall()
        by_row = {int(r["row"]): r for r in found}
        out: list[ChunkRecord] = []
        for row in rows:
            r = by_row.get(int(row))
            if r is None:
                continue
            chunk = Chunk(
                id=r["chunk_id"],
                doc_id=r["doc_id"],
                text=r["text"],
                start=r["start"],
                end=r["end"],
                heading=r["heading"],
                ordinal=r["ordinal"],
            )
            meta = {k: r[k] for k in _META_COLUMNS}
            if r["page_starts"]:  # a paged source: the page the chunk starts on
                meta["page"] = page_of({"page_starts": json.loads(r["page_starts"])}, chunk.start)
            out.append(ChunkRecord(int(row), chunk, r["title"], meta))
        return out

    # -- filters -----------------------------------------------------------------------------
    def _load_filter_data(self) -> None:
        with self._lock:
            if self._row_doc is not None:
                return
            docs = self._db.execute(
                "SELECT doc_idx, doc_id, issuer, doc_number, date, doc_type, region, source FROM documents ORDER BY doc_idx"
            ).fetchall()
            position = {int(d["doc_idx"]): i for i, d in enumerate(docs)}
            self._doc_meta = [{k: d[k] for k in _META_COLUMNS} for d in docs]
            self._doc_ids = [d["doc_id"] for d in docs]
            row_doc = [
                position[int(r[0])] for r in self._db.execute("SELECT doc_idx FROM chunks ORDER BY row")
            ]
            self._row_doc = np.asarray(row_doc, dtype=np.int32)

    def filter_mask(self, matches: Any) -> npt.NDArray[np.bool_]:
        """Boolean mask over rows: ``matches(meta, doc_id)`` decides per document."""
        self._load_filter_data()
        assert self._doc_meta is not None and self._doc_ids is not None and self._row_doc is not None
        doc_ok = np.fromiter(
            (bool(matches(m, i)) for m, i in zip(self._doc_meta, self._doc_ids, strict=True)),
            dtype=np.bool_,
            count=len(self._doc_ids),
        )
        return doc_ok[self._row_doc] if self._row_doc.size else np.zeros(0, dtype=np.bool_)


def _document_from_row(row: sqlite3.Row) -> Document:
    meta = DocMeta(
        issuer=row["issuer"],
        doc_number=row["doc_number"],
        date=row["date"],
        doc_type=row["doc_type"],
        region=row["region"],
        source=row["source"],
        extra=json.loads(row["meta"] or "{}"),
    )
    return Document(id=row["doc_id"], title=row["title"], text=row["text"], meta=meta)
