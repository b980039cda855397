"""The contract of an open index, run over both backends (embedded, Milvus Lite): what every
later stage may rely on (``policyqa.index.base``)."""

from __future__ import annotations

from policyqa.index.base import DocumentStore, OpenIndex
from tests.helpers import fixture_documents

DOCS = {d.id: d for d in fixture_documents()}
ROW_KEYS = {
    "doc_id",
    "title",
    "issuer",
    "doc_number",
    "date",
    "doc_type",
    "region",
    "source",
    "n_chunks",
    "n_chars",
}


def test_is_an_open_index_with_a_document_store(backend_index: OpenIndex) -> None:
    assert isinstance(backend_index, OpenIndex)
    assert isinstance(backend_index.store, DocumentStore)
    assert backend_index.version and isinstance(backend_index.version, str)
    assert backend_index.manifest
    assert backend_index.settings.chunk_max_chars == 120
    assert backend_index.encoder.dim == 256
    assert backend_index.tokenizer.terms("稳岗返还")


def test_counts(backend_index: OpenIndex) -> None:
    store = backend_index.store
    assert store.count_documents() == len(DOCS)
    assert store.count_chunks() == sum(len(store.chunks_of(d)) for d in DOCS)
    assert store.count_chunks() >= len(DOCS)


def test_documents_come_back_whole(backend_index: OpenIndex) -> None:
    store = backend_index.store
    assert sorted(store.doc_ids()) == sorted(DOCS)
    for doc_id, doc in DOCS.items():
        assert store.has_document(doc_id)
        got = store.get_document(doc_id)
        assert got is not None and got.text == doc.text and got.title == doc.title
        assert got.meta.issuer == doc.meta.issuer and got.meta.date == doc.meta.date
    assert not store.has_document("no-such-doc") and store.get_document("no-such-doc") is None


def test_chunks_cite_their_document_verbatim_in_order(backend_index: OpenIndex) -> None:
    for doc_id, doc in DOCS.items():
        chunks = backend_index.store.chunks_of(doc_id)
        assert chunks and [c.ordinal for c in chunks] == list(range(len(chunks)))
        for c in chunks:
            assert c.doc_id == doc_id and doc.text[c.start : c.end] == c.text
        assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    assert backend_index.store.chunks_of("no-such-doc") == []


def test_list_documents_pages_in_index_order(backend_index: OpenIndex) -> None:
    store = backend_index.store
    rows = store.list_documents(offset=0, limit=100)
    assert [r["doc_id"] for r in rows] == [d.id for d in fixture_documents()]
    for r in rows:
        assert set(r) >= ROW_KEYS
        assert r["n_chars"] == len(DOCS[r["doc_id"]].text)
        assert r["n_chunks"] == len(store.chunks_of(r["doc_id"]))
    assert store.list_documents(offset=2, limit=3) == rows[2:5]
    assert store.list_documents(offset=len(rows), limit=10) == []


def test_the_same_documents_give_the_same_chunks_in_both_backends(backend_index: OpenIndex) -> None:
    """Both writers follow one indexing plan: chunk boundaries are the backend's own data, and
    must be those of the plan (the embedded chunker's) for every document."""
    from policyqa.index.ingest import chunker_for

    chunker = chunker_for(backend_index.settings, backend_index.encoder)
    for doc_id, doc in DOCS.items():
        planned = [(c.start, c.end) for c in chunker.split(doc)]
        assert [(c.start, c.end) for c in backend_index.store.chunks_of(doc_id)] == planned, doc_id
