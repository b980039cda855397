"""The Milvus backend against Milvus Lite on a temp file: same protocol, hits, filters, add/delete.

The fixture corpus is indexed twice with the hashing encoder, once embedded and once in Milvus
Lite (exact FLAT dense index, so dense results can be compared row for row), with the default
settings (BM25 over words and character bigrams); and twice more with ``char_bigrams=False``
(BM25 over words only, one BM25 field in Milvus).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from policyqa.corpus.models import DocMeta, Document
from policyqa.index.embedded import EmbeddedIndex as Index
from policyqa.index.embedded import open_embedded_index
from policyqa.pipeline import build_index
from policyqa.retriever.base import Filters, Retriever
from policyqa.retriever.factory import retriever_for
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, fixture_documents, fixture_queries, milvus_settings

if importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None:
    pytest.skip(
        "pymilvus and milvus-lite are not installed (pip install pymilvus milvus-lite)",
        allow_module_level=True,
    )

from policyqa.index.milvus import (
    MilvusBackendError,
    MilvusIndex,
    analyzer_params,
    bigram_analyzer_params,
    bigram_text,
    bm25_text,
    date_int,
    milvus_uri,
    open_milvus_index,
    quote,
)
from policyqa.retriever.milvus import filter_expression

MODES = ("bm25", "dense", "hybrid")


def _pair(root: Path, **extra: object) -> Iterator[tuple[Index, MilvusIndex, Settings]]:
    s = milvus_settings(root, **extra)
    enc = HashingEncoder()
    docs = fixture_documents()
    # the same settings but the embedded backend (the pipeline follows settings.backend)
    e = s.model_copy(update={"backend": "embedded"})
    build_index(docs, e.index_dir, e, show_progress=False, encoder=enc)
    embedded = open_embedded_index(e.index_dir, e, encoder=enc)
    try:
        mi = MilvusIndex(s, index_dir=s.index_dir, encoder=enc)
        mi.build(docs)
    except MilvusBackendError as exc:  # pragma: no cover - platform dependent
        pytest.skip(f"Milvus Lite cannot start on this platform: {exc}")
    yield embedded, mi, s
    mi.close()
    embedded.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Index, MilvusIndex, Settings]]:
    """The fixture corpus, embedded and in Milvus Lite (one module-wide Lite file), bigrams on."""
    yield from _pair(tmp_path_factory.mktemp("milvus"))


@pytest.fixture(scope="module")
def words_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Index, MilvusIndex, Settings]]:
    """The same with ``char_bigrams=False``: BM25 over the jieba words only."""
    yield from _pair(tmp_path_factory.mktemp("milvus-words"), char_bigrams=False)


# -- pure helpers ---------------------------------------------------------------------------------


def test_bm25_text_normalises_and_blanks_punctuation() -> None:
    assert bm25_text("貿易便利化，ＡＢＣ！") == "贸易便利化 abc "
    assert bm25_text("covid-19 增长3.5%") == "covid-19 增长3.5%"


def test_bigram_text_is_the_tokenizers_bigrams() -> None:
    from policyqa.index.tokenizer import ChineseTokenizer

    tok = ChineseTokenizer()
    assert bigram_text(tok, "疫情防控，復工復產 ABC") == "疫情 情防 防控 复工 工复 复产"
    assert bigram_text(tok, "abc 1.5 的") == ""
    assert tok.terms("疫情防控") == tok.tokenize("疫情防控") + tok.bigrams("疫情防控")
    assert bigram_analyzer_params() == {"tokenizer": "whitespace"}
    assert bigram_analyzer_params(lite=True) == {"tokenizer": "standard"}


def test_date_int() -> None:
    assert date_int("2024-02-20") == 20240220
    assert date_int("2024-02-20T10:00") == 20240220
    assert date_int(None) == 0
    assert date_int("2024-13-01") == 0


def test_quote_escapes() -> None:
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_filter_expression() -> None:
    assert filter_expression(None) == ("", False)
    assert filter_expression(Filters()) == ("", False)
    expr, recheck = filter_expression(
        Filters(
            issuer=("海关", '青"岛'),
            region=("山东",),
            date_from=date(2024, 1, 1),
            date_to=date(2024, 12, 31),
            doc_ids=("d1", "d2"),
        )
    )
    assert not recheck
    assert 'doc_id in ["d1", "d2"]' in expr
    assert '(issuer like "%海关%" or issuer like "%青\\"岛%")' in expr
    assert 'region like "%山东%"' in expr
    assert "date_int > 0 and date_int >= 20240101 and date_int <= 20241231" in expr
    expr, recheck = filter_expression(Filters(doc_type=("100%",)))
    assert recheck and 'doc_type like "%100_%"' in expr


def test_analyzer_uses_the_policy_dictionary_and_stopwords(pair: tuple[Index, MilvusIndex, Settings]) -> None:
    _, mi, _ = pair
    params = analyzer_params(mi.tokenizer)
    tok = params["tokenizer"]
    assert tok["type"] == "jieba" and tok["mode"] == "search"
    assert tok["dict"][0] == "_default_" and "贸易便利化" in tok["dict"]
    assert "的" in params["filter"][0]["stop_words"]


def _fields(mi: MilvusIndex, collection: str) -> set[str]:
    return {f["name"] for f in mi.client.describe_collection(collection)["fields"]}


def test_bm25_fields_follow_char_bigrams(
    pair: tuple[Index, MilvusIndex, Settings], words_pair: tuple[Index, MilvusIndex, Settings]
) -> None:
    _, mi, _ = pair
    assert mi.bigrams
    for name in (mi.collection, mi.docs_collection):
        assert {"bm25_text", "sparse", "bigram_text", "bigram_sparse"} <= _fields(mi, name)
    _, words, _ = words_pair
    assert not words.bigrams
    for name in (words.collection, words.docs_collection):
        assert "sparse" in _fields(words, name) and "bigram_sparse" not in _fields(words, name)


def test_bm25_score_is_words_plus_bigrams(pair: tuple[Index, MilvusIndex, Settings]) -> None:
    _, mi, _ = pair
    r = retriever_for(mi, "bm25")
    query = fixture_queries()[0][1]
    hits = r.search(query, top_k=5)
    ids = [h.chunk_id for h in hits]
    words = r._field_scores("sparse", bm25_text(query), ids)
    bigrams = r._field_scores("bigram_sparse", bigram_text(mi.tokenizer, query), ids)
    assert bigrams and all(v > 0 for v in bigrams.values())
    for h in hits:
        assert h.score == pytest.approx(words.get(h.chunk_id, 0.0) + bigrams.get(h.chunk_id, 0.0), rel=1e-5)


def test_default_uri_is_a_lite_file_beside_the_index(tmp_path: Path) -> None:
    s = milvus_settings(tmp_path)
    assert milvus_uri(s) == str((tmp_path / "index-milvus.db").resolve())
    assert milvus_uri(s.model_copy(update={"milvus_uri": "http://milvus:19530"})) == "http://milvus:19530"


# -- contract ---------------------------------------------------------------------------------------


def test_counts_and_protocol(pair: tuple[Index, MilvusIndex, Settings]) -> None:
    embedded, mi, _ = pair
    assert mi.count_documents() == embedded.store.count_documents()
    assert mi.count_chunks() == embedded.store.count_chunks()
    for mode in MODES:
        r = retriever_for(mi, mode)
        assert isinstance(r, Retriever)
        assert r.name == mode


@pytest.mark.parametrize("mode", MODES)
def test_hits_cite_the_document_text(pair: tuple[Index, MilvusIndex, Settings], mode: str) -> None:
    _, mi, _ = pair
    docs = {d.id: d for d in fixture_documents()}
    for _, query, _gold in fixture_queries():
        hits = retriever_for(mi, mode).search(query, top_k=5)
        assert hits, query
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
        for h in hits:
            doc = docs[h.doc_id]
            assert doc.text[h.start : h.end] == h.text
            assert h.title == doc.title and h.issuer == doc.meta.issuer and h.date == doc.meta.date


@pytest.mark.parametrize("bigrams", [True, False])
@pytest.mark.parametrize("mode", ["bm25", "dense"])
def test_same_answers_as_embedded(
    pair: tuple[Index, MilvusIndex, Settings],
    words_pair: tuple[Index, MilvusIndex, Settings],
    mode: str,
    bigrams: bool,
) -> None:
    embedded, mi, _ = pair if bigrams else words_pair
    for _, query, _gold in fixture_queries():
        a = [h.chunk_id for h in retriever_for(embedded, mode).search(query, top_k=5)]
        b = [h.chunk_id for h in retriever_for(mi, mode).search(query, top_k=5)]
        assert a == b, query


def test_dense_scores_equal_embedded(pair: tuple[Index, MilvusIndex, Settings]) -> None:
    embedded, mi, _ = pair
    query = fixture_queries()[0][1]
    a = retriever_for(embedded, "dense").search(query, top_k=5)
    b = retriever_for(mi, "dense").search(query, top_k=5)
    assert [round(h.score, 4) for h in a] == [round(h.score, 4) for h in b]


@pytest.mark.parametrize("bigrams", [True, False])
@pytest.mark.parametrize("fusion", ["rrf", "zscore", "weighted"])
def test_hybrid_top1_and_gold_like_embedded(
    pair: tuple[Index, MilvusIndex, Settings],
    words_pair: tuple[Index, MilvusIndex, Settings],
    fusion: str,
    bigrams: bool,
) -> None:
    embedded, mi, _ = pair if bigrams else words_pair
    for _, query, gold in fixture_queries():
        a = retriever_for(embedded, "hybrid", fusion=fusion).search(query, top_k=5)
        b = retriever_for(mi, "hybrid", fusion=fusion).search(query, top_k=5)
        # BM25 differs in detail (Lucene idf; words and bigrams scored as two fields), so near
        # ties may swap two chunks of a document: the same document first, its chunk near the top
        assert a[0].doc_id == b[0].doc_id, query
        assert b[0].chunk_id in {h.chunk_id for h in a[:3]}, query
        assert (a[0].doc_id in gold) == (b[0].doc_id in gold)
        assert {"bm25", "dense", "fused"} <= set(b[0].scores)


def test_rrf_runs_in_milvus_with_embedded_scores(words_pair: tuple[Index, MilvusIndex, Settings]) -> None:
    embedded, mi, _ = words_pair
    r = retriever_for(mi, "hybrid", fusion="rrf", bm25_weight=0.5)  # equal weights: Milvus' RRFRanker
    assert r.server_side  # type: ignore[attr-defined]
    assert not retriever_for(mi, "hybrid", fusion="rrf", bm25_weight=0.7).server_side  # type: ignore[attr-defined]
    query = fixture_queries()[0][1]
    a = retriever_for(embedded, "hybrid", fusion="rrf", bm25_weight=0.5).search(query, top_k=3)
    b = r.search(query, top_k=3)
    assert [round(h.score, 6) for h in a] == [round(h.score, 6) for h in b]


def test_rrf_with_bigrams_fuses_the_summed_bm25_list_on_the_client(
    pair: tuple[Index, MilvusIndex, Settings],
) -> None:
    embedded, mi, _ = pair
    r = retriever_for(mi, "hybrid", fusion="rrf")
    assert not r.server_side  # type: ignore[attr-defined]
    for _, query, _gold in fixture_queries():
        a = retriever_for(embedded, "hybrid", fusion="rrf").search(query, top_k=3)
        b = r.search(query, top_k=3)
        assert [h.chunk_id for h in a] == [h.chunk_id for h in b], query
        assert [round(h.score, 6) for h in a] == [round(h.score, 6) for h in b], query


@pytest.mark.parametrize("mode", MODES)
def test_filters_match_embedded(pair: tuple[Index, MilvusIndex, Settings], mode: str) -> None:
    embedded, mi, _ = pair
    docs = fixture_documents()
    issuer = docs[0].meta.issuer or ""
    query = fixture_queries()[0][1]
    cases = [
        Filters(issuer=(issuer[-2:],)),
        Filters(doc_ids=(docs[1].id, docs[2].id)),
        Filters(date_from=date(2024, 1, 1)),
        Filters(date_to=date(2023, 12, 31)),
        Filters(issuer=("没有这个机关",)),
        Filters(issuer=(issuer[-2:], "没有"), date_from=date(2000, 1, 1), date_to=date(2100, 1, 1)),
    ]
    for f in cases:
        a = retriever_for(embedded, mode).search(query, top_k=10, filters=f)
        b = retriever_for(mi, mode).search(query, top_k=10, filters=f)
        assert {h.doc_id for h in b} <= {d.id for d in docs if f.matches(d.meta.to_dict(), d.id)}
        if mode != "hybrid":
            assert [h.chunk_id for h in a] == [h.chunk_id for h in b], f
        else:
            assert {h.doc_id for h in a} == {h.doc_id for h in b} or len(a) == 10, f


def test_wildcard_filter_values_are_rechecked(pair: tuple[Index, MilvusIndex, Settings]) -> None:
    _, mi, _ = pair
    query = fixture_queries()[0][1]
    assert retriever_for(mi, "bm25").search(query, top_k=10, filters=Filters(issuer=("青_海关",))) == []


def test_errors(pair: tuple[Index, MilvusIndex, Settings]) -> None:
    _, mi, _ = pair
    for mode in MODES:
        with pytest.raises(ValueError):
            retriever_for(mi, mode).search("   ")
        with pytest.raises(ValueError):
            retriever_for(mi, mode).search("海关", top_k=0)
    with pytest.raises(ValueError):
        retriever_for(mi, "sparse")
    assert retriever_for(mi, "bm25").search("的", top_k=5) == []  # stopwords only: nothing to match
    assert retriever_for(mi, "dense").batch_search([], top_k=5) == []


def test_get_document(pair: tuple[Index, MilvusIndex, Settings]) -> None:
    _, mi, _ = pair
    doc = fixture_documents()[0]
    got = mi.get_document(doc.id)
    assert got is not None and got.text == doc.text and got.title == doc.title
    assert got.meta.issuer == doc.meta.issuer
    assert mi.get_document("no-such-doc") is None


# -- writing ----------------------------------------------------------------------------------------


def test_add_replace_delete(tmp_path: Path) -> None:
    # counts the chunks embedded: the reranker's sentence vectors stay off here
    s = milvus_settings(tmp_path, index_sentence_vectors=False)
    enc = HashingEncoder()
    docs = fixture_documents()
    with MilvusIndex(s, encoder=enc) as mi:
        mi.build(docs[:5])
        n_chunks = mi.count_chunks()
        assert mi.count_documents() == 5
    # reopen from the Lite file beside the index dir: the collections persist
    mi = open_milvus_index(s, encoder=enc)
    try:
        before = enc.texts_encoded
        long_text = "第一条 海洋牧场示范区建设。\n" + "专项资金支持冷链物流企业。" * 2000
        new = Document(
            id="new-1",
            title="冷链物流专项资金管理办法",
            text=long_text,
            meta=DocMeta(issuer="青岛市财政局", date="2024-05-01"),
        )
        summary = mi.add_documents([new])
        assert summary["last_change"]["added_documents"] == 1
        change = summary["last_change"]
        # only the new document's passages are embedded (its repeated passages once)
        assert enc.texts_encoded - before == change["embedded"]
        assert 0 < change["embedded"] <= change["new_chunks"]
        assert mi.count_documents() == 6
        got = mi.get_document("new-1")
        assert got is not None and got.text == long_text  # stored in parts, joined back
        hits = retriever_for(mi, "bm25").search("海洋牧场示范区", top_k=3)
        assert hits and hits[0].doc_id == "new-1"
        # replacing a document keeps one copy
        changed = Document(id=docs[0].id, title=docs[0].title, text=docs[0].text[:60], meta=docs[0].meta)
        mi.add_documents([changed])
        assert mi.count_documents() == 6
        assert mi.count_chunks() < n_chunks + summary["last_change"]["new_chunks"] + 1
        mi.delete_documents(["new-1"])
        assert mi.count_documents() == 5
        assert all(
            h.doc_id != "new-1" for h in retriever_for(mi, "hybrid").search("冷链物流专项资金", top_k=10)
        )
        with pytest.raises(KeyError):
            mi.delete_documents(["new-1"])
        assert mi.count_documents() == 5
    finally:
        mi.close()


def test_open_missing_collections_fails_clearly(tmp_path: Path) -> None:
    s = milvus_settings(tmp_path, milvus_collection="nothing_here")
    with pytest.raises(MilvusBackendError, match="build them first"):
        open_milvus_index(s, encoder=HashingEncoder())


def test_collections_without_the_bigram_field(tmp_path: Path) -> None:
    """Collections built without bigrams: opened with bigrams they search words only (and warn);
    the benchmark's strict opener refuses them, so its cache rebuilds them."""
    enc = HashingEncoder()
    words = milvus_settings(tmp_path, char_bigrams=False)
    with MilvusIndex(words, encoder=enc) as mi:
        mi.build(fixture_documents()[:3])
    s = milvus_settings(tmp_path)
    mi = open_milvus_index(s, encoder=enc)
    try:
        assert not mi.bigrams
        assert retriever_for(mi, "bm25").search(fixture_queries()[0][1], top_k=3)
    finally:
        mi.close()
    with pytest.raises(MilvusBackendError, match="other settings"):
        open_milvus_index(s, encoder=enc, strict=True)
    with MilvusIndex(s, encoder=enc) as mi:
        mi.build(fixture_documents()[:3])
    open_milvus_index(s, encoder=enc, strict=True).close()  # built with the same settings


def test_open_with_other_dimension_fails(tmp_path: Path) -> None:
    s = milvus_settings(tmp_path)
    with MilvusIndex(s, encoder=HashingEncoder(64)) as mi:
        mi.build(fixture_documents()[:2])
    with pytest.raises(MilvusBackendError, match="64-dimensional"):
        open_milvus_index(s, encoder=HashingEncoder(128))


# -- the benchmark suite with --backend milvus --------------------------------------------------------


def test_eval_backend_option_and_cache_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from policyqa.eval import backends, runner
    from policyqa.eval.cli import add_eval_parser, command_line
    from policyqa.eval.datasets import load_benchmark

    parser = argparse.ArgumentParser()
    add_eval_parser(parser.add_subparsers())
    bench_dir = Path(__file__).parents[1] / "eval" / "data" / "beir-tiny"
    args = parser.parse_args(["eval", str(bench_dir), "--backend", "milvus"])
    assert args.backend == "milvus" and "--backend milvus" in command_line(args)
    build, open_ = runner._milvus_pipeline()

    def unreachable(*args: object, **kwargs: object) -> None:
        raise MilvusBackendError("cannot connect to Milvus at milvus.internal:19530")

    monkeypatch.setattr(runner, "open_for_eval", unreachable)
    monkeypatch.setattr(runner, "build_for_eval", unreachable)
    with pytest.raises(runner.EvalError, match="cannot connect"):
        open_(tmp_path / "x", milvus_settings(tmp_path))
    with pytest.raises(runner.EvalError, match="cannot connect"):
        build([], tmp_path / "x", milvus_settings(tmp_path))
    s = milvus_settings(tmp_path)
    bench = load_benchmark(bench_dir)
    embedded_key = runner.index_cache_key(bench, s.model_copy(update={"backend": "embedded"}))
    milvus_key = runner.index_cache_key(bench, s)
    assert embedded_key != milvus_key
    # collections with and without the bigram field never share a cache entry
    assert runner.index_cache_key(bench, s.model_copy(update={"char_bigrams": False})) != milvus_key
    # remote Milvus: benchmark collections never take the serving collection's name
    remote = s.model_copy(update={"milvus_uri": "http://milvus.internal:19530"})
    assert backends.eval_settings(tmp_path / "x", remote).milvus_collection.startswith("policyqa_eval_")
    assert backends.eval_settings(tmp_path / "x", s).milvus_collection == "policyqa"
    assert "milvus_uri" not in runner.settings_summary(remote)


def test_eval_runs_on_milvus_lite(tmp_path: Path) -> None:
    from policyqa.eval import backends
    from policyqa.eval.datasets import load_benchmark
    from policyqa.eval.runner import run_benchmark

    enc = HashingEncoder()
    s = milvus_settings(tmp_path)
    bench = load_benchmark(Path(__file__).parents[1] / "eval" / "data" / "beir-tiny")

    def builder(
        docs: object, target: Path, settings: Settings, show_progress: bool = True
    ) -> dict[str, object]:
        return backends.build_for_eval(docs, target, settings, show_progress=show_progress, encoder=enc)  # type: ignore[arg-type]

    def opener(target: Path, settings: Settings) -> MilvusIndex:
        return open_milvus_index(backends.eval_settings(target, settings), index_dir=target, encoder=enc)

    result = run_benchmark(
        bench,
        s,
        systems=["bm25", "dense", "hybrid"],
        index_dir=tmp_path / "bench",
        builder=builder,
        opener=opener,
    )
    assert set(result.systems) == {"bm25", "dense", "hybrid"}
    assert result.index is not None and result.index.chunks > 0
    assert all(not sr.errors for sr in result.systems.values())
    assert (tmp_path / "bench-milvus.db").exists()


def test_server_uri_with_token(tmp_path: Path) -> None:
    """The standalone/cluster path: a Milvus gRPC endpoint by URI with a token (a Milvus Lite
    server on the loopback stands in for the Milvus server; it accepts and ignores the token)."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    server, db, port = start_server_in_thread(str(tmp_path / "server-data"), host="127.0.0.1", port=0)
    try:
        s = milvus_settings(tmp_path, milvus_uri=f"http://127.0.0.1:{port}", milvus_token="root:Milvus")
        enc = HashingEncoder()
        with MilvusIndex(s, encoder=enc) as mi:
            assert mi.uri == f"http://127.0.0.1:{port}"
            mi.build(fixture_documents())
        mi = open_milvus_index(s, encoder=enc)
        try:
            query = fixture_queries()[0][1]
            assert retriever_for(mi, "hybrid").search(query, top_k=3)
            assert mi.count_documents() == len(fixture_documents())
        finally:
            mi.close()
        assert not (tmp_path / "index-milvus.db").exists()  # no Lite file with a URI
    finally:
        server.stop(grace=0)
        db.close()


def test_build_embeds_the_sentence_reranker_vectors(tmp_path: Path) -> None:
    """Like the embedded index, a Milvus build puts every chunk's sentence vectors in the cache."""
    from policyqa.retriever.rerank import SentenceReranker

    s = milvus_settings(tmp_path)
    enc = HashingEncoder()
    try:
        mi = MilvusIndex(s, index_dir=s.index_dir, encoder=enc)
        mi.build(fixture_documents())
    except MilvusBackendError as exc:  # pragma: no cover - platform dependent
        pytest.skip(f"Milvus Lite cannot start on this platform: {exc}")
    try:
        query = "市南区一季度计划落地多少个重点项目？"
        hits = retriever_for(mi, "hybrid").search(query, top_k=10)
        reranker = SentenceReranker.for_index(mi)
        reranker.warm_up()
        before = enc.texts_encoded
        out = reranker.rerank(query, hits, top_k=5)
        assert enc.texts_encoded - before == 1  # the query; every sentence came from the cache
        assert out and all("sentence" in h.scores for h in out)
    finally:
        mi.close()
