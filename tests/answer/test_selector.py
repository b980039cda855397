"""Extractive answers: question types, typed spans, sentence choice, offsets, no-answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from policyqa.answer.question import expected_type, find_typed_spans
from policyqa.answer.selector import SpanModel, SpanSelector
from policyqa.answer.spans import SPAN_FEATURES, expected_f1_choice
from policyqa.answer.types import Answer, CitationError, verify_answer
from policyqa.corpus.models import Document
from policyqa.index.embedded import EmbeddedIndex as Index
from policyqa.qa import make_answerer
from policyqa.retriever.base import Hit


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("青岛市南区一季度计划落地多少个重点项目？", "amount"),
        ("稳岗返还的比例是多少？", "amount"),
        ("小型微利企业所得税优惠政策执行到什么时候？", "date"),
        ("该政策何时起施行？", "date"),
        ("由哪个部门负责受理申请？", "organization"),
        ("展会在哪里举办？", "place"),
        ("什么是行政许可？", "sentence"),
        ("中小微企业房租怎么减免？", "sentence"),
    ],
)
def test_expected_type(question: str, kind: str) -> None:
    assert expected_type(question) == kind


def test_typed_spans() -> None:
    text = "力争一季度落地重点项目28个，总投资约120亿元，比上年增长15%。"
    amounts = [text[s:e] for s, e in find_typed_spans(text, "amount")]
    assert "28个" in amounts and "约120亿元" in amounts and "15%" in amounts
    when = "延续执行至2027年12月31日。自2月1日起至6月30日止。"
    dates = [when[s:e] for s, e in find_typed_spans(when, "date")]
    assert "2027年12月31日" in dates
    assert any(d.startswith("2月1日") and "6月30日" in d for d in dates)
    orgs = [
        t
        for s, e in find_typed_spans("由青岛市商务局负责受理。", "organization")
        for t in ["由青岛市商务局负责受理。"[s:e]]
    ]
    assert any(o.endswith("商务局") for o in orgs)
    places = [
        "展会在山东省济南市举办。"[s:e] for s, e in find_typed_spans("展会在山东省济南市举办。", "place")
    ]
    assert any("济南市" in p for p in places)


def _hit(rank: int, doc_id: str, text: str, start: int = 0) -> Hit:
    return Hit(
        chunk_id=f"{doc_id}-c{rank}",
        doc_id=doc_id,
        score=1.0 / rank,
        rank=rank,
        text=text,
        start=start,
        end=start + len(text),
        title=f"标题{doc_id}",
        issuer="某某局",
        doc_number="某发〔2024〕1号",
        date="2024-02-01",
        heading="一、总则",
        scores={"fused": 1.0 / rank, "rerank": 1.0 / rank},
        ranks={"fused": rank, "rerank": rank},
    )


def test_span_selector_picks_and_narrows() -> None:
    doc = "前言部分。今年我区将持续发力招商引资。力争一季度落地重点项目28个，总投资约120亿元。其他内容。"
    start = 3
    chunk = doc[start:]
    sel = SpanSelector(passages=3, min_confidence=0.0)
    hits = [_hit(1, "a", chunk, start=start), _hit(2, "b", "无关的段落，讲的是别的事情。")]
    ans = sel.select("一季度计划落地多少个重点项目？", hits)
    assert not ans.no_answer
    assert ans.answer_type == "amount"
    assert ans.text == "28个"
    assert "力争一季度落地重点项目28个" in ans.sentence
    assert doc[ans.start : ans.end] == ans.text  # type: ignore[misc]
    assert doc[ans.sentence_start : ans.sentence_end] == ans.sentence  # type: ignore[misc]
    verify_answer(ans, doc)
    assert ans.citation == 1
    assert [c.number for c in ans.citations] == [1, 2]
    c = ans.citations[0]
    assert (c.title, c.issuer, c.doc_number, c.date, c.heading) == (
        "标题a",
        "某某局",
        "某发〔2024〕1号",
        "2024-02-01",
        "一、总则",
    )
    assert 0.0 <= ans.confidence <= 1.0
    plain = SpanSelector(passages=3, min_confidence=0.0, narrow=False).select(
        "一季度计划落地多少个重点项目？", hits
    )
    assert plain.answer_type == "sentence" and plain.text == plain.sentence


def test_span_selector_says_no_answer_below_threshold() -> None:
    hits = [_hit(1, "a", "完全无关的一句话。另一句也无关。")]
    ans = SpanSelector(min_confidence=1.0).select("稳岗返还的比例是多少？", hits)
    assert ans.no_answer and ans.text == "" and ans.start is None
    assert len(ans.citations) == 1  # still lists the closest passage
    assert SpanSelector().select("问题", []).no_answer


def test_verify_answer_rejects_wrong_offsets() -> None:
    ans = Answer(question="q", text="28个", no_answer=False, confidence=0.9, doc_id="a", start=0, end=3)
    with pytest.raises(CitationError):
        verify_answer(ans, "abcdef")


def test_span_model_round_trip() -> None:
    m = SpanModel.load()
    again = SpanModel.from_json(m.to_json())
    assert again.min_confidence == pytest.approx(m.min_confidence)
    assert np.allclose(again.weights, m.weights)
    assert 0.0 <= m.confidence(0.0, 0.0) <= 1.0
    assert "trained_on" in m.info  # the shipped weights are trained, and say on what
    with pytest.raises(ValueError):
        SpanModel.from_json({"format": 2})
    with pytest.raises(ValueError):
        SpanModel.from_json({**m.to_json(), "features": ["x"]})


class _Store:
    """The part of the chunk store the selector uses: ``get_document(doc_id).text``."""

    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = docs

    def get_document(self, doc_id: str) -> Document | None:
        text = self.docs.get(doc_id)
        return None if text is None else Document(id=doc_id, title="", text=text)


def _model(**weights: float) -> SpanModel:
    n = len(SPAN_FEATURES)
    w = np.zeros(n)
    for name, value in weights.items():
        w[SPAN_FEATURES.index(name)] = value
    return SpanModel(w, np.zeros(n), np.ones(n), (1.0, 0.0, 0.0), 0.0)


def test_span_selector_runs_past_the_passage_verbatim(tmp_path: Path) -> None:
    doc = "通知如下。各地交通运输主管部门要加强高速公路路网保障工作，保障优先通行，及时疏导交通。下一条。"
    cut = doc.index("保障优先")
    hits = [_hit(1, "a", doc[:cut], start=0)]
    path = tmp_path / "m.json"
    # a model that likes long spans that end a sentence
    path.write_text(json.dumps(_model(log_len=1.0, ends_sentence=5.0).to_json()), encoding="utf-8")
    sel = SpanSelector(documents=_Store({"a": doc}), model_path=path, min_confidence=0.0, extend_chars=300)
    ans = sel.select("各地交通运输主管部门的措施是什么？", hits)
    assert ans.end is not None and ans.end > cut  # ran on past the end of the passage
    assert doc[ans.start : ans.end] == ans.text
    verify_answer(ans, doc)
    assert ans.chunk_id == "a-c1" and ans.citation == 1
    # without the store the span stays inside the passage
    inside = SpanSelector(model_path=path, min_confidence=0.0).select(
        "各地交通运输主管部门的措施是什么？", hits
    )
    assert inside.end is not None and inside.end <= cut
    verify_answer(inside, doc)
    # a store whose document no longer matches the passage: the passage text is used
    stale = SpanSelector(
        documents=_Store({"a": "别的文本"}), model_path=path, min_confidence=0.0, extend_chars=300
    )
    ans = stale.select("各地交通运输主管部门的措施是什么？", hits)
    assert ans.end is not None and ans.end <= cut
    verify_answer(ans, doc)


def test_span_selector_typed_answer_with_a_typed_model(tmp_path: Path) -> None:
    doc = "前言部分。力争一季度落地重点项目28个，总投资约120亿元。"
    hits = [_hit(1, "a", doc)]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_model(typed_typed_q=2.0, unit_match=2.0).to_json()), encoding="utf-8")
    ans = SpanSelector(model_path=path, min_confidence=0.0).select("一季度计划落地多少个重点项目？", hits)
    assert (ans.text, ans.answer_type) == ("28个", "amount")
    assert ans.sentence == "力争一季度落地重点项目28个，总投资约120亿元。"
    verify_answer(ans, doc)


def test_date_questions_are_narrowed_inside_the_chosen_span(tmp_path: Path) -> None:
    doc = "申报工作安排。申报截止时间为2024年3月31日，逾期不予受理。"
    hits = [_hit(1, "a", doc)]
    path = tmp_path / "m.json"
    # a model that prefers long spans and dislikes typed ones: the span is narrowed anyway
    path.write_text(json.dumps(_model(log_len=1.0, typed=-5.0).to_json()), encoding="utf-8")
    ans = SpanSelector(model_path=path, min_confidence=0.0).select("申报截止到什么时候？", hits)
    assert (ans.text, ans.answer_type) == ("2024年3月31日", "date")
    verify_answer(ans, doc)
    # an amount question keeps the model's longer span (narrowing measured to cost there)
    ans = SpanSelector(model_path=path, min_confidence=0.0).select("截止时间前有多少天？", hits)
    assert ans.answer_type == "sentence" and len(ans.text) > 10
    verify_answer(ans, doc)


def test_narrowing_model_picks_the_answer_inside_the_chosen_sentence(tmp_path: Path) -> None:
    doc = "无关的开头一句。今年计划落地重点项目28个，总投资100亿元。另起一句讲别的事情，与项目无关。"
    hits = [_hit(1, "a", doc)]
    question = "今年计划落地多少个重点项目？"
    wide = _model(log_len=0.5, cov_span=2.0, sentences=-3.0, typed=-5.0)
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(wide.to_json()), encoding="utf-8")
    before = SpanSelector(model_path=path, min_confidence=0.0).select(question, hits)
    assert before.answer_type == "sentence" and "28个" in before.text
    # the narrowing weights prefer short typed spans with the question's unit (个)
    narrowing = _model(log_len=-1.0, typed=3.0, unit_match=2.0)
    wide.narrow_weights = narrowing.weights
    again = SpanModel.from_json(json.loads(json.dumps(wide.to_json())))
    assert again.narrow_weights is not None
    np.testing.assert_allclose(again.narrow_weights, narrowing.weights)
    path.write_text(json.dumps(wide.to_json()), encoding="utf-8")
    ans = SpanSelector(model_path=path, min_confidence=0.0).select(question, hits)
    assert (ans.text, ans.answer_type) == ("28个", "amount")
    assert ans.sentence == before.sentence  # the snippet is the first choice's sentence(s)
    assert ans.text in ans.sentence
    verify_answer(ans, doc)
    # narrow=False answers with the whole sentence(s), as before
    plain = SpanSelector(model_path=path, min_confidence=0.0, narrow=False).select(question, hits)
    assert plain.text == plain.sentence
    with pytest.raises(ValueError, match="narrow_weights"):
        SpanModel.from_json({**wide.to_json(), "narrow_weights": [1.0]})


def test_typed_ranges_are_candidates() -> None:
    text = "执行期限为2020年1月1日至2020年6月30日，分别处以200万元至300万元的罚款。"
    amounts = [text[a:b] for a, b in find_typed_spans(text, "amount")]
    assert "200万元至300万元" in amounts and "200万元" in amounts
    assert "2020年1月1日至2020年6月30日" in [text[a:b] for a, b in find_typed_spans(text, "date")]


def _boosted_model(path: Path, dense_model: str) -> Path:
    """A boosted span model trained on toy groups (the right span: the reader's best start)."""
    pytest.importorskip("lightgbm")
    from policyqa.answer.selector import FEATURE_SETS
    from policyqa.train.answer import SpanGroup, fit_boosted_span_model

    full = FEATURE_SETS[-1]
    col = full.index("reader_rel_start")
    rng = np.random.default_rng(0)
    groups = []
    for q in range(40):
        x = rng.normal(size=(5, len(full)))
        x[:, col] = -3.0
        x[q % 5, col] = 0.0
        f1 = np.where(np.arange(5) == q % 5, 0.9, 0.1)
        groups.append(SpanGroup(f"q{q}", x, f1, (f1 > 0.5) * 1.0, (f1 > 0.5) * 1.0, x[:0]))
    model = fit_boosted_span_model(
        groups, full, params={"min_data_in_leaf": 5, "n_estimators": 10}, info={"dense_model": dense_model}
    )
    path.write_text(json.dumps(model.to_json()), encoding="utf-8")
    return path


def test_boosted_span_model_reads_sentences_and_reader_logits(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from policyqa.answer.reader import TransformersReader
    from policyqa.answer.selector import FEATURE_SETS
    from policyqa.retriever.rerank import SentenceReranker
    from tests.helpers import HashingEncoder, save_tiny_bert

    tiny = save_tiny_bert(tmp_path / "qa", "BertForQuestionAnswering")
    encoder = HashingEncoder()
    path = _boosted_model(tmp_path / "boosted.json", encoder.model_id)
    doc = "前言部分。今年我区将持续发力招商引资。力争一季度落地重点项目28个，总投资约120亿元。"
    hits = [_hit(1, "a", doc), _hit(2, "b", "无关的段落，讲的是别的事情。")]
    sel = SpanSelector(
        model_path=path,
        min_confidence=0.0,
        sentences=SentenceReranker(encoder, None, feature_weight=0.0),
        span_reader=TransformersReader(tiny, max_seq_length=64, stride=16),
    )
    assert sel.model.kind == "span-boosted"
    cands, x, _t = sel.candidates("一季度计划落地多少个重点项目？", hits)
    assert x.shape == (len(cands), len(FEATURE_SETS[-1]))
    ans = sel.select("一季度计划落地多少个重点项目？", hits)
    assert not ans.no_answer and ans.text
    verify_answer(ans, doc if ans.doc_id == "a" else "无关的段落，讲的是别的事情。")
    # minimum-Bayes-risk choice: the candidate of highest expected F1 under softmax(score / T),
    # with the best-scored span's confidence; a cold softmax gives the best-scored span
    scores = sel.model.score(x)
    positions = [(c.doc_id, c.start, c.end) for c in cands]
    for t, want in ((0.5, expected_f1_choice(scores, positions, 0.5)), (1e-6, int(np.argmax(scores)))):
        mbr = SpanSelector(
            model_path=path,
            min_confidence=0.0,
            sentences=sel.sentences,
            span_reader=sel.span_reader,
            mbr_temperature=t,
        ).select("一季度计划落地多少个重点项目？", hits)
        assert (mbr.doc_id, mbr.start, mbr.end) == positions[want]
        assert mbr.confidence == ans.confidence
        verify_answer(mbr, doc if mbr.doc_id == "a" else "无关的段落，讲的是别的事情。")
    with pytest.raises(ValueError, match="mbr_temperature must be positive"):
        SpanSelector(mbr_temperature=0.0)
    # the span features alone when asked for them
    assert sel.candidates("一季度计划落地多少个重点项目？", hits, SPAN_FEATURES)[1].shape[1] == len(
        SPAN_FEATURES
    )
    # evidence features without their source are refused with the reason
    with pytest.raises(ValueError, match="sentence similarities"):
        SpanSelector(min_confidence=0.0).candidates("一季度计划落地多少个重点项目？", hits, FEATURE_SETS[-1])
    # a boosted model without the evidence it reads is refused with the reason
    with pytest.raises(ValueError, match="sentence"):
        SpanSelector(model_path=path).warm_up()
    with pytest.raises(ValueError, match="reader"):
        SpanSelector(model_path=path, sentences=SentenceReranker(encoder, None)).warm_up()


def test_default_span_model_follows_the_encoder(tmp_path: Path, fixture_index: Index) -> None:
    from policyqa.answer.reader import TransformersReader
    from policyqa.retriever.rerank import SentenceReranker
    from tests.helpers import HashingEncoder

    # the shipped boosted model was trained on another encoder's similarities: linear here
    sel = SpanSelector(
        sentences=SentenceReranker(HashingEncoder(), None, feature_weight=0.0),
        span_reader=TransformersReader(tmp_path / "never-loaded"),
    )
    assert sel.model.kind == "span-linear"
    boosted = SpanModel.load(name="answer_spans_boosted.json")
    assert boosted.kind == "span-boosted" and boosted.info["dense_model"] != HashingEncoder().model_id
    assert "trained_on" in boosted.info
    # settings: 'linear' gives the selector no evidence providers; the default does
    linear = make_answerer(
        fixture_index.settings.model_copy(update={"answer_span_model": "linear"}), fixture_index
    )
    assert isinstance(linear, SpanSelector) and linear.sentences is None and linear.span_reader is None
    default = make_answerer(fixture_index.settings, fixture_index)
    assert isinstance(default, SpanSelector) and default.sentences is not None
    assert default.model.kind == "span-linear"  # the fixture index embeds with the hashing encoder
    # the builtin reader asked for twice (span features and narrowing) is one reader
    both = make_answerer(
        fixture_index.settings.model_copy(update={"answer_narrow_reader": "builtin"}), fixture_index
    )
    assert isinstance(both, SpanSelector) and both.narrow_reader is both.span_reader is not None
