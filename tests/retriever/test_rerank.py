"""The rerank stage: the protocol, the feature reranker, and a real (tiny) cross-encoder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from policyqa.corpus.text import embedding_sentences, split_sentences
from policyqa.index.embedded import EmbeddedIndex as Index
from policyqa.retriever.base import Hit
from policyqa.retriever.factory import retriever_for
from policyqa.retriever.rerank import (
    FEATURE_NAMES,
    CrossEncoderReranker,
    FeatureModel,
    FeatureReranker,
    NoReranker,
    Reranker,
    SentenceReranker,
    apply_rerank_scores,
    export_cross_encoder_onnx,
)
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, save_tiny_bert


def _hit(i: int, doc: str = "d", text: str = "文本", score: float = 1.0) -> Hit:
    return Hit(
        chunk_id=f"c{i}",
        doc_id=f"{doc}{i}",
        score=score,
        rank=i,
        text=text,
        start=0,
        end=len(text),
        scores={"fused": score, "bm25": 2.0, "dense": 0.5},
        ranks={"fused": i, "bm25": i, "dense": i},
    )


def test_apply_rerank_scores_keeps_breakdown_and_renumbers() -> None:
    hits = [_hit(1, score=0.3), _hit(2, score=0.2), _hit(3, score=0.1)]
    out = apply_rerank_scores(hits, [0.1, 0.9, 0.5], top_k=2)
    assert [h.chunk_id for h in out] == ["c2", "c3"]
    assert [h.rank for h in out] == [1, 2]
    assert out[0].scores["rerank"] == pytest.approx(0.9)
    assert out[0].scores["fused"] == pytest.approx(0.2)
    assert out[0].ranks == {"fused": 2, "bm25": 2, "dense": 2, "rerank": 1}
    with pytest.raises(ValueError):
        apply_rerank_scores(hits, [1.0])


def test_ties_keep_the_earlier_order() -> None:
    hits = [_hit(1), _hit(2), _hit(3)]
    assert [h.chunk_id for h in apply_rerank_scores(hits, [1.0, 1.0, 1.0])] == ["c1", "c2", "c3"]


def test_no_reranker_keeps_order() -> None:
    r = NoReranker()
    assert isinstance(r, Reranker)
    hits = [_hit(1), _hit(2), _hit(3)]
    out = r.rerank("问题", hits, top_k=2)
    assert [h.chunk_id for h in out] == ["c1", "c2"]
    assert r.rerank("问题", []) == []
    with pytest.raises(ValueError):
        r.rerank("问题", hits, top_k=0)


def test_split_sentences_offsets() -> None:
    text = "第一句。第二句！\n第三句没有句号  第四句；"
    spans = split_sentences(text)
    pieces = [text[s:e] for s, e in spans]
    assert pieces == ["第一句。", "第二句！", "第三句没有句号", "第四句；"]
    long = "，".join(["甲乙丙丁戊己庚辛"] * 40) + "。"
    for s, e in split_sentences(long, max_chars=50):
        assert e - s <= 50


def test_feature_reranker_on_the_fixture_index(fixture_index: Index) -> None:
    reranker = FeatureReranker.for_index(fixture_index)
    assert isinstance(reranker, Reranker)
    reranker.warm_up()
    hits = retriever_for(fixture_index, "hybrid").search("市南区一季度计划落地多少个重点项目？", top_k=10)
    out = reranker.rerank("市南区一季度计划落地多少个重点项目？", hits, top_k=5)
    assert 0 < len(out) <= 5
    assert [h.rank for h in out] == list(range(1, len(out) + 1))
    assert out[0].doc_id == "d06"
    for h in out:
        assert {"bm25", "dense", "fused", "rerank"} <= set(h.scores) | {"bm25", "dense"}
        assert "rerank" in h.scores and "rerank" in h.ranks and "fused" in h.ranks
        assert h.score == h.scores["rerank"]
    x = reranker.features("市南区一季度计划落地多少个重点项目？", hits)
    assert x.shape == (len(hits), len(FEATURE_NAMES))
    assert np.isfinite(x).all()


def test_embedding_sentences() -> None:
    text = "一、总体要求。\n市南区力争一季度落地重点项目28个；新开工项目12个。 好。"
    assert embedding_sentences(text) == [
        "一、总体要求。",
        "市南区力争一季度落地重点项目28个；",
        "新开工项目12个。",
    ]
    assert embedding_sentences("  短。 ") == ["短。"]  # nothing long enough: the whole text
    assert embedding_sentences("   ") == []


def _z(x: list[float]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return (a - a.mean()) / a.std()


def test_sentence_reranker_scores_exactly(tmp_path: Path) -> None:
    enc = HashingEncoder()
    query = "一季度落地重点项目多少个"
    hits = [
        _hit(1, text="招商引资工作会议召开。会议强调优化营商环境，重点项目建设要提速。", score=3.0),
        _hit(2, text="全区经济运行平稳。力争一季度落地重点项目28个。其余内容从略。", score=2.0),
        _hit(3, text="市民服务中心开放时间调整。", score=1.0),
    ]
    r = SentenceReranker(enc, tmp_path / "cache", weight=2.0)
    assert isinstance(r, Reranker)
    r.warm_up()
    out = r.rerank(query, hits)
    q = enc.encode_queries([query])[0]
    best = [max(float(v @ q) for v in enc.encode_passages(embedding_sentences(h.text))) for h in hits]
    expected = _z([3.0, 2.0, 1.0]) + 2.0 * _z(best)
    by_id = {h.chunk_id: h for h in out}
    for i, h in enumerate(hits):
        got = by_id[h.chunk_id]
        assert got.scores["sentence"] == pytest.approx(best[i], abs=1e-3)  # float16 cache
        assert got.scores["rerank"] == pytest.approx(expected[i], abs=1e-2)
        assert got.scores["fused"] == h.scores["fused"] and got.ranks["fused"] == h.ranks["fused"]
    # the passage whose one sentence answers overtakes the better-fused one that only touches it
    assert [h.chunk_id for h in out] == ["c2", "c1", "c3"]
    assert [h.rank for h in out] == [1, 2, 3] and out[0].ranks["rerank"] == 1
    assert r.rerank(query, hits, top_k=1)[0].chunk_id == "c2"
    assert r.rerank(query, []) == []
    with pytest.raises(ValueError):
        r.rerank(query, hits, top_k=0)


def test_sentence_reranker_weight_zero_keeps_the_order_and_groups_documents(tmp_path: Path) -> None:
    enc = HashingEncoder()
    hits = [
        _hit(1, text="第一段文字内容。", score=3.0),
        _hit(2, text="第二段文字内容。", score=2.0),
        _hit(3, text="第三段。", score=1.0),
    ]
    hits[2] = replace(hits[2], doc_id="d1")
    out = SentenceReranker(enc, None, weight=0.0).rerank("问题", hits)
    # a later chunk of the best document joins it; otherwise the retriever's order stays
    assert [h.chunk_id for h in out] == ["c1", "c3", "c2"]
    with pytest.raises(ValueError):
        SentenceReranker(enc, None, weight=-1.0)
    with pytest.raises(ValueError):
        SentenceReranker(None)


def test_sentence_reranker_survives_an_unusable_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x", encoding="utf-8")  # the cache directory cannot be created under a file
    enc = HashingEncoder()
    hits = [_hit(1, text="第一段文字内容。", score=2.0), _hit(2, text="一季度落地重点项目28个。", score=1.0)]
    r = SentenceReranker(enc, blocker / "cache", weight=2.0)
    with caplog.at_level("WARNING", logger="policyqa.retriever.rerank"):
        out = r.rerank("一季度落地重点项目多少个", hits)
    assert r.cache_dir is None and [h.chunk_id for h in out] == ["c2", "c1"]
    assert any("embedding cache" in rec.getMessage() for rec in caplog.records)


def test_sentence_vectors_come_from_the_index_build(fixture_index: Index) -> None:
    """The index embedded every chunk's sentences into the cache: reranking embeds the query only."""
    reranker = SentenceReranker.for_index(fixture_index)
    reranker.warm_up()
    query = "市南区一季度计划落地多少个重点项目？"
    hits = retriever_for(fixture_index, "hybrid").search(query, top_k=10)
    enc = fixture_index.encoder
    before = enc.texts_encoded  # type: ignore[attr-defined]
    out = reranker.rerank(query, hits, top_k=5)
    assert enc.texts_encoded - before == 1  # type: ignore[attr-defined]
    assert out[0].doc_id == "d06"
    assert all("sentence" in h.scores and "rerank" in h.ranks for h in out)
    # without the cache every sentence of the candidates is embedded at query time
    cold = SentenceReranker(enc, None)
    before = enc.texts_encoded  # type: ignore[attr-defined]
    again = cold.rerank(query, hits, top_k=5)
    n_sentences = sum(len(embedding_sentences(h.text)) for h in hits)
    assert enc.texts_encoded - before == 1 + n_sentences  # type: ignore[attr-defined]
    assert [h.chunk_id for h in again] == [h.chunk_id for h in out]


def test_sentence_reranker_fuses_the_feature_model(fixture_index: Index) -> None:
    reranker = SentenceReranker.for_index(fixture_index, weight=0.5, feature_weight=0.5)
    assert reranker.features is not None
    reranker.warm_up()
    query = "青岛海关将如何促进贸易便利化？"
    hits = retriever_for(fixture_index, "hybrid").search(query, top_k=10)
    sims = reranker.similarities(query, hits)
    model = reranker.features.model_scores(query, hits)
    expected = _z([h.scores["fused"] for h in hits]) + 0.5 * _z(sims) + 0.5 * _z(model)
    best: dict[str, float] = {}
    for h, e in zip(hits, expected, strict=True):
        best[h.doc_id] = max(float(e), best.get(h.doc_id, float(e)))
    out = reranker.rerank(query, hits)
    assert sorted(h.chunk_id for h in out) == sorted(h.chunk_id for h in hits)
    for h in out:
        assert h.scores["rerank"] == pytest.approx(best[h.doc_id], abs=1e-9)
    assert [h.scores["rerank"] for h in out] == sorted((h.scores["rerank"] for h in out), reverse=True)
    # no feature model: its weight is ignored
    assert SentenceReranker.for_index(fixture_index, feature_weight=0.0).features is None


def test_feature_model_json_round_trip(tmp_path: Path) -> None:
    model = FeatureModel.load()
    data = model.to_json()
    again = FeatureModel.from_json(json.loads(json.dumps(data)))
    x = np.random.default_rng(0).normal(size=(4, len(FEATURE_NAMES)))
    assert np.allclose(model.score(model.select(x)), again.score(again.select(x)), atol=1e-5)
    bad = dict(data, features=["nope"], weights=[1.0], mean=[0.0], std=[1.0])
    with pytest.raises(ValueError):
        FeatureModel.from_json(bad)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert FeatureReranker(model_path=path).model.features == model.features
    adapter = tmp_path / "ce.safetensors"  # a cross-encoder adapter given to the wrong reranker
    adapter.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}\xc4\xff")
    with pytest.raises(ValueError, match="ce.safetensors is not a feature model JSON"):
        FeatureModel.load(adapter)


# --------------------------------------------------------------------------------------------
# a tiny cross-encoder, built and saved by the test, loaded by path through the real code

_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    *list("的是在和了有税费企业小微减免返还比例房租项目一季度落地重点个问题段落文本"),
]


def _tiny_cross_encoder(path: Path) -> Path:
    pytest.importorskip("torch")
    return save_tiny_bert(
        path, "BertForSequenceClassification", _VOCAB, max_position_embeddings=64, num_labels=1
    )


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce") / "model")


def test_cross_encoder_reranker_torch(tiny_ce: Path) -> None:
    r = CrossEncoderReranker(tiny_ce, max_length=32, batch_size=2, backend="torch")
    assert isinstance(r, Reranker)
    hits = [_hit(i, text="小微企业减免房租" * (i + 1)) for i in range(1, 6)]
    out = r.rerank("小微企业房租减免", hits, top_k=3)
    assert r.active_backend == "torch"
    assert len(out) == 3
    assert [h.rank for h in out] == [1, 2, 3]
    assert all("rerank" in h.scores and "fused" in h.scores for h in out)
    direct = r.predict([("小微企业房租减免", h.text) for h in hits])
    assert sorted(direct, reverse=True)[:3] == pytest.approx([h.scores["rerank"] for h in out])


def test_cross_encoder_reranker_onnx_int8(tiny_ce: Path) -> None:
    pytest.importorskip("onnxruntime")
    torch_scores = CrossEncoderReranker(tiny_ce, max_length=32, backend="torch").predict(
        [("问题", "段落文本"), ("小微企业", "税费减免比例")]
    )
    path = export_cross_encoder_onnx(tiny_ce)
    assert path.name == "model_int8.onnx" and path.is_file()
    r = CrossEncoderReranker(tiny_ce, max_length=32, backend="auto")
    scores = r.predict([("问题", "段落文本"), ("小微企业", "税费减免比例")])
    assert r.active_backend == "onnx-int8"
    assert scores == pytest.approx(torch_scores, abs=0.05)
    hits = [_hit(i) for i in range(1, 4)]
    assert len(r.rerank("问题", hits)) == 3


def test_cross_encoder_onnx_int8_required_but_missing(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    r = CrossEncoderReranker(tmp_path / "m", backend="onnx-int8")
    with pytest.raises(FileNotFoundError):
        r.warm_up()


def test_cross_encoder_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        CrossEncoderReranker("x", max_length=2)
    with pytest.raises(ValueError):
        CrossEncoderReranker("x", batch_size=0)
    with pytest.raises(ValueError):
        CrossEncoderReranker("x", backend="tensorrt")  # type: ignore[arg-type]


def test_make_reranker_from_settings(tmp_path: Path, tiny_ce: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from policyqa.qa import make_reranker

    base = Settings(cache_dir=tmp_path, index_dir=tmp_path / "i")
    assert isinstance(make_reranker(base.model_copy(update={"reranker": "none"})), NoReranker)
    assert isinstance(make_reranker(base), SentenceReranker)
    assert isinstance(make_reranker(base.model_copy(update={"reranker": "features"})), FeatureReranker)
    shipped = make_reranker(
        base.model_copy(update={"reranker": "cross-encoder"})
    )  # no model: the shipped one
    assert isinstance(shipped, CrossEncoderReranker) and shipped.model == "builtin"
    monkeypatch.setattr("policyqa.qa.DEFAULT_CROSS_ENCODER_ADAPTER", tmp_path / "gone")  # a damaged install
    with pytest.raises(ValueError, match="POLICYQA_RERANK_MODEL"):
        make_reranker(base.model_copy(update={"reranker": "cross-encoder"}))
    ce = make_reranker(base.model_copy(update={"reranker": "cross-encoder", "rerank_model": str(tiny_ce)}))
    assert isinstance(ce, CrossEncoderReranker)
    with pytest.raises(ValueError):
        Settings(reranker="bogus")


def test_sentence_similarities_keep_offsets_and_agree_with_the_best() -> None:
    from policyqa.corpus.text import embedding_sentence_spans, embedding_sentences
    from policyqa.retriever.rerank import SentenceReranker
    from tests.helpers import HashingEncoder

    text = "  第一句讲招商引资。 \n第二句讲重点项目28个；短。" + "很长的句子，" * 30
    spans = embedding_sentence_spans(text)
    assert [text[a:b] for a, b in spans] == embedding_sentences(text)
    assert all(not text[a].isspace() and not text[b - 1].isspace() for a, b in spans)
    hits = [
        Hit(chunk_id="c1", doc_id="d1", score=1.0, rank=1, text=text, start=0, end=len(text)),
        Hit(chunk_id="c2", doc_id="d2", score=0.5, rank=2, text="", start=0, end=0),
    ]
    rr = SentenceReranker(HashingEncoder(), None, feature_weight=0.0)
    per_hit = rr.sentence_similarities("重点项目有多少个？", hits)
    assert [(a, b) for a, b, _s in per_hit[0]] == spans and per_hit[1] == []
    assert rr.similarities("重点项目有多少个？", hits) == [max(s for _a, _b, s in per_hit[0]), 0.0]
