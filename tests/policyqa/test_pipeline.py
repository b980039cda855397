"""Index lifecycle: build, incremental add, delete, crash safety, version checks."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from policyqa.corpus.models import DocMeta, Document
from policyqa.index.layout import IndexLayout, IndexNotFoundError, IndexVersionError
from policyqa.pipeline import add_documents, build_index, delete_documents, open_index
from policyqa.retriever.factory import retriever_for
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, fixture_documents

NEW_DOC = Document(
    id="n01",
    title="关于推行惠企政策免申即享的通知",
    text="关于推行惠企政策免申即享的通知\n各区市：为减轻企业负担，推行惠企政策免申即享，由部门比对数据后直接兑现资金。",
    meta=DocMeta(issuer="某市人民政府办公厅", date="2024-05-06"),
)


def _ids(index_dir, settings, enc, query="惠企政策免申即享", mode="hybrid"):  # type: ignore[no-untyped-def]
    with open_index(index_dir, settings, encoder=enc) as idx:
        return [h.doc_id for h in retriever_for(idx, mode).search(query, top_k=5)]


def test_build_writes_a_manifest(settings: Settings) -> None:
    enc = HashingEncoder()
    m = build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    assert m["counts"]["documents"] == 10 and m["counts"]["chunks"] >= 10
    assert m["model"]["dim"] == 256 and m["tokenizer"]["name"] == "jieba-search"
    on_disk = IndexLayout(settings.index_dir).read_manifest()
    assert on_disk["fingerprint"] == m["fingerprint"]
    gen = IndexLayout(settings.index_dir).current()
    assert {p.name for p in gen.iterdir()} >= {"manifest.json", "store.sqlite", "bm25", "dense"}


def test_rebuild_embeds_only_new_text(settings: Settings) -> None:
    enc = HashingEncoder()
    m1 = build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    n1 = enc.texts_encoded
    assert m1["last_change"]["embedded"] == m1["counts"]["chunks"]
    m2 = build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    assert m2["last_change"]["embedded"] == 0 and enc.texts_encoded == n1


def test_add_documents_is_incremental(settings: Settings) -> None:
    enc = HashingEncoder()
    build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    before = enc.texts_encoded
    m = add_documents([NEW_DOC], settings.index_dir, settings, show_progress=False, encoder=enc)
    assert m["counts"]["documents"] == 11
    change = m["last_change"]
    # the new chunks are embedded, and so are their sentences (for the default reranker)
    assert change["new_chunks"] == change["embedded"]
    assert change["sentences"] >= change["sentences_embedded"] > 0
    assert enc.texts_encoded - before == change["embedded"] + change["sentences_embedded"]
    assert _ids(settings.index_dir, settings, enc)[0] == "n01"
    # old documents are still found, with the same offsets
    with open_index(settings.index_dir, settings, encoder=enc) as idx:
        hit = retriever_for(idx, "bm25").search("稳岗返还", top_k=1)[0]
        doc = idx.store.get_document(hit.doc_id)
        assert doc is not None and doc.text[hit.start : hit.end] == hit.text


def test_add_replaces_a_document_with_the_same_id(settings: Settings) -> None:
    enc = HashingEncoder()
    build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    changed = Document(id="d06", title="市南区招商", text="市南区将引进总部型企业三十家，主攻航运金融。")
    m = add_documents([changed], settings.index_dir, settings, show_progress=False, encoder=enc)
    assert m["counts"]["documents"] == 10
    with open_index(settings.index_dir, settings, encoder=enc) as idx:
        doc = idx.store.get_document("d06")
        assert doc is not None and doc.text == changed.text


def test_delete_document(settings: Settings) -> None:
    enc = HashingEncoder()
    build_index(
        [*fixture_documents(), NEW_DOC], settings.index_dir, settings, show_progress=False, encoder=enc
    )
    assert "n01" in _ids(settings.index_dir, settings, enc)
    m = delete_documents(["n01"], settings.index_dir, settings, encoder=enc)
    assert m["counts"]["documents"] == 10
    for mode in ("bm25", "dense", "hybrid"):
        assert "n01" not in _ids(settings.index_dir, settings, enc, mode=mode)


def test_delete_unknown_id_changes_nothing(settings: Settings) -> None:
    enc = HashingEncoder()
    build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    gen = IndexLayout(settings.index_dir).current()
    with pytest.raises(KeyError, match="nope"):
        delete_documents(["d01", "nope"], settings.index_dir, settings, encoder=enc)
    assert IndexLayout(settings.index_dir).current() == gen


class _FailingEncoder(HashingEncoder):
    def encode_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        raise RuntimeError("simulated crash while embedding")


def test_a_failed_build_leaves_the_previous_index_usable(settings: Settings) -> None:
    enc = HashingEncoder()
    build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    before = _ids(settings.index_dir, settings, enc, "稳岗返还")
    with pytest.raises(RuntimeError, match="simulated"):
        add_documents([NEW_DOC], settings.index_dir, settings, show_progress=False, encoder=_FailingEncoder())
    assert _ids(settings.index_dir, settings, enc, "稳岗返还") == before
    assert not list(settings.index_dir.glob(".building-*"))


def test_incompatible_format_says_rebuild(settings: Settings) -> None:
    enc = HashingEncoder()
    build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    path = IndexLayout(settings.index_dir).current() / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["format"] = 999
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexVersionError, match="Rebuild"):
        open_index(settings.index_dir, settings, encoder=enc)


def test_adding_with_other_settings_is_refused(settings: Settings) -> None:
    enc = HashingEncoder()
    build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    other = settings.model_copy(update={"chunk_max_chars": 200})
    with pytest.raises(IndexVersionError, match="rebuild"):
        add_documents([NEW_DOC], settings.index_dir, other, show_progress=False, encoder=enc)


def test_no_index_yet(settings: Settings) -> None:
    with pytest.raises(IndexNotFoundError, match="policyqa index"):
        open_index(settings.index_dir, settings, encoder=HashingEncoder())


def test_dimension_mismatch_is_refused(settings: Settings) -> None:
    build_index(
        fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=HashingEncoder()
    )
    with pytest.raises(IndexVersionError, match="dimensional"):
        open_index(settings.index_dir, settings, encoder=HashingEncoder(dim=64))


def test_updates_give_the_scores_of_a_full_rebuild(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """add (new and replacing) and delete touch only new rows, yet BM25 equals a fresh build."""
    enc = HashingEncoder()
    docs = fixture_documents()
    build_index(docs[:6], settings.index_dir, settings, show_progress=False, encoder=enc)
    add_documents(docs[6:], settings.index_dir, settings, show_progress=False, encoder=enc)
    changed = Document(id=docs[2].id, title="市南区招商", text="市南区将引进总部型企业三十家，主攻航运金融。")
    add_documents([changed, NEW_DOC], settings.index_dir, settings, show_progress=False, encoder=enc)
    delete_documents([docs[4].id], settings.index_dir, settings, encoder=enc)
    final = [changed if d.id == changed.id else d for d in docs if d.id != docs[4].id]
    final = [d for d in final if d.id != changed.id] + [changed, NEW_DOC]
    fresh = settings.model_copy(update={"index_dir": tmp_path / "fresh"})
    build_index(final, fresh.index_dir, fresh, show_progress=False, encoder=enc)
    with (
        open_index(settings.index_dir, settings, encoder=enc) as upd,
        open_index(fresh.index_dir, fresh, encoder=enc) as ref,
    ):
        assert upd.store.doc_ids() == ref.store.doc_ids()
        for q in ["稳岗返还", "惠企政策免申即享", "市南区 总部型企业", "没有的词"]:
            toks = upd.tokenizer.tokenize(q)
            np.testing.assert_allclose(upd.bm25.scores(toks), ref.bm25.scores(toks), rtol=1e-6, atol=1e-7)
            assert upd.doc_bm25 is not None and ref.doc_bm25 is not None
            np.testing.assert_allclose(
                upd.doc_bm25.scores(toks), ref.doc_bm25.scores(toks), rtol=1e-6, atol=1e-7
            )


class _DiesAfter(HashingEncoder):
    """Embeds ``batches`` batches of passages, then the process "dies" (an exception)."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.batches_left = batches

    def encode_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self.batches_left == 0:
            raise KeyboardInterrupt("killed mid-build")
        self.batches_left -= 1
        return super().encode_passages(texts)


def test_an_interrupted_build_resumes_from_what_was_embedded(settings: Settings) -> None:
    # counts chunk batches: the reranker's sentence vectors (embedded after each batch) stay off
    settings = settings.model_copy(update={"index_sentence_vectors": False})
    paragraphs = [
        f"第{i}条 第{i}项惠企政策：对企业{i}给予稳岗返还和社会保险补贴，资金{i}万元。" for i in range(200)
    ]
    big = Document(id="big", title="惠企政策汇编", text="\n".join(paragraphs))
    build_index(
        fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=HashingEncoder()
    )
    before = IndexLayout(settings.index_dir).current()
    dying = _DiesAfter(batches=2)
    with pytest.raises(KeyboardInterrupt):
        add_documents([big], settings.index_dir, settings, show_progress=False, encoder=dying)
    # the live index is the one from before, and no half-written generation is left behind
    assert IndexLayout(settings.index_dir).current() == before
    assert not [p for p in settings.index_dir.iterdir() if p.name.startswith(".building")]
    again = HashingEncoder()
    m = add_documents([big], settings.index_dir, settings, show_progress=False, encoder=again)
    assert m["last_change"]["embedding_cache_hits"] == 2 * 64  # the two batches done before the crash
    assert again.texts_encoded == m["last_change"]["new_chunks"] - 2 * 64 > 0


def test_batched_indexing_equals_one_batch(
    settings: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import policyqa.index.ingest as ingest

    enc = HashingEncoder()
    build_index(fixture_documents(), settings.index_dir, settings, show_progress=False, encoder=enc)
    monkeypatch.setattr(ingest, "INDEX_BATCH_CHARS", 50)  # about a document per batch
    small = settings.model_copy(update={"index_dir": tmp_path / "batched"})
    build_index(fixture_documents(), small.index_dir, small, show_progress=False, encoder=enc)
    with (
        open_index(settings.index_dir, settings, encoder=enc) as one,
        open_index(small.index_dir, small, encoder=enc) as many,
    ):
        assert one.store.count_chunks() == many.store.count_chunks()
        np.testing.assert_array_equal(one.dense.embeddings, many.dense.embeddings)
        for q in ["稳岗返还", "惠企政策", "市南区 总部型企业"]:
            toks = one.tokenizer.terms(q)
            np.testing.assert_array_equal(one.bm25.scores(toks), many.bm25.scores(toks))
            assert [h.chunk_id for h in retriever_for(one, "hybrid").search(q)] == [
                h.chunk_id for h in retriever_for(many, "hybrid").search(q)
            ]
