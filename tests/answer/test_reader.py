"""The optional transformers QA reader, with a tiny model the test builds and saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyqa.retriever.base import Hit
from tests.helpers import save_tiny_bert


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-qa") / "model", "BertForQuestionAnswering")


def _hit(rank: int, text: str, start: int) -> Hit:
    return Hit(
        chunk_id=f"c{rank}",
        doc_id=f"d{rank}",
        score=1.0 / rank,
        rank=rank,
        text=text,
        start=start,
        end=start + len(text),
        title="标题",
    )


def test_reader_returns_a_verbatim_span_with_offsets(tiny_qa: Path) -> None:
    from policyqa.answer.reader import TransformersReader

    doc = "青岛市南区。力争一季度落地重点项目28个，计划年内完成。" * 6
    hits = [_hit(1, doc[6:], 6), _hit(2, doc[:40], 0)]
    reader = TransformersReader(tiny_qa, passages=2, min_confidence=0.0, max_seq_length=48, stride=16)
    ans = reader.select("一季度落地多少个重点项目？", hits)
    assert not ans.no_answer
    assert ans.answer_type == "reader"
    assert ans.text
    assert ans.start is not None and ans.end is not None
    assert doc[ans.start : ans.end] == ans.text
    assert ans.sentence_start is not None and ans.sentence_end is not None
    assert doc[ans.sentence_start : ans.sentence_end] == ans.sentence
    assert ans.text in ans.sentence
    assert 0.0 <= ans.confidence <= 1.0
    assert ans.citation in (1, 2)

    strict = TransformersReader(tiny_qa, min_confidence=1.0, max_seq_length=48, stride=16)
    assert strict.select("多少个项目？", hits).no_answer


def test_reader_is_chosen_by_settings_and_needs_a_local_path(tiny_qa: Path, tmp_path: Path) -> None:
    from policyqa.answer.reader import TransformersReader
    from policyqa.qa import make_answerer
    from policyqa.settings import Settings

    settings = Settings(cache_dir=tmp_path, answer_reader=str(tiny_qa))
    assert isinstance(make_answerer(settings), TransformersReader)
    with pytest.raises(FileNotFoundError):
        TransformersReader(tmp_path / "missing").warm_up()
    with pytest.raises(ValueError):
        TransformersReader(tiny_qa, passages=0)


def test_char_logits_cover_every_character_of_each_text(tiny_qa: Path) -> None:
    import math

    import numpy as np

    from policyqa.answer.reader import TransformersReader

    texts = ["力争一季度落地重点项目28个。" * 5, "青岛市南区", ""]
    reader = TransformersReader(tiny_qa, max_seq_length=48, stride=16)
    out = reader.char_logits("落地多少个项目？", texts)
    assert [len(o.start) for o in out] == [len(t) for t in texts]
    for o in out[:2]:
        assert np.isfinite(o.start).all() and np.isfinite(o.end).all()  # every character is in a token
        assert math.isfinite(o.null)
    assert len(out[2].start) == 0 and math.isfinite(out[2].null)  # an empty text: the question alone
    assert reader.char_logits("问题", []) == []
    # the same logits the span search reads: its best span's score is a start + end logit pair
    score, _null, pi, a, b = max(reader._read("落地多少个项目？", texts[:1]), key=lambda w: w[0])
    assert pi == 0 and score <= float(out[0].start.max() + out[0].end.max()) + 1e-5


def test_onnx_backends_read_the_same_logits_as_torch(tiny_qa: Path, tmp_path: Path) -> None:
    import shutil

    import numpy as np

    from policyqa.answer.reader import TransformersReader

    model = tmp_path / "qa"
    shutil.copytree(tiny_qa, model)  # the export lands beside the model: keep the fixture's copy clean
    texts = ["力争一季度落地重点项目28个。" * 5, "青岛市南区"]
    question = "落地多少个项目？"
    kwargs = {"max_seq_length": 48, "stride": 16, "min_confidence": 0.0, "cache_dir": tmp_path / "cache"}
    torch_reader = TransformersReader(model, **kwargs)  # type: ignore[arg-type]
    ref = torch_reader.char_logits(question, texts)
    hits = [_hit(1, texts[0], 0), _hit(2, texts[1], 100)]
    for backend, tol in (("onnx", 1e-4), ("onnx-int8", None)):
        reader = TransformersReader(model, backend=backend, **kwargs)  # type: ignore[arg-type]
        out = reader.char_logits(question, texts)
        assert (model / "onnx" / ("qa.onnx" if backend == "onnx" else "qa_int8.onnx")).is_file()
        for ours, theirs in zip(out, ref, strict=True):
            assert ours.start.shape == theirs.start.shape
            if tol is not None:
                assert np.allclose(ours.start, theirs.start, atol=tol)
                assert np.allclose(ours.end, theirs.end, atol=tol)
                assert abs(ours.null - theirs.null) < tol
            else:  # int8: close, not equal
                assert np.corrcoef(ours.start, theirs.start)[0, 1] > 0.9
        ans = reader.select(question, hits)
        source = {1: texts[0], 2: texts[1]}[ans.citation or 1]
        base = hits[(ans.citation or 1) - 1].start
        assert ans.start is not None and ans.end is not None
        assert source[ans.start - base : ans.end - base] == ans.text
        if backend == "onnx":
            same = torch_reader.select(question, hits)
            assert (ans.text, ans.start, ans.end, ans.citation) == (
                same.text,
                same.start,
                same.end,
                same.citation,
            )
            assert ans.confidence == pytest.approx(same.confidence, abs=1e-4)
    with pytest.raises(ValueError, match="reader backend"):
        TransformersReader(model, backend="tensorrt")


def test_reader_backend_comes_from_settings(tmp_path: Path) -> None:
    from policyqa.qa import make_reader
    from policyqa.settings import Settings

    assert make_reader(Settings(cache_dir=tmp_path), "builtin").backend == "torch"
    settings = Settings(cache_dir=tmp_path, answer_reader_backend="onnx-int8")
    assert make_reader(settings, "builtin").backend == "onnx-int8"
    with pytest.raises(ValueError):
        Settings(cache_dir=tmp_path, answer_reader_backend="tensorrt")


@pytest.mark.parametrize("question", ["落地多少个项目？" * 60, "啊" * 380, "a" * 500, "项目 " * 200])
def test_a_question_longer_than_the_window_is_read_by_its_last_tokens(tiny_qa: Path, question: str) -> None:
    """Regression (hardening issue, finding 2): a question of more tokens than the window leaves
    beside the stride made the tokenizer panic (``stride must be strictly less than max_len``)."""
    from policyqa.answer.reader import TransformersReader

    reader = TransformersReader(tiny_qa, passages=2, min_confidence=0.0, max_seq_length=48, stride=16)
    reader.warm_up()
    assert reader.max_question_tokens == 48 - 16 - 4 - 1
    clipped = reader.clip_question(question)
    assert question.endswith(clipped)
    n_tokens = len(reader._tokenizer(question, add_special_tokens=False)["input_ids"])
    kept = len(reader._tokenizer(clipped, add_special_tokens=False)["input_ids"])
    assert kept == min(n_tokens, reader.max_question_tokens)
    doc = "力争一季度落地重点项目28个，计划年内完成。" * 4
    ans = reader.select(question, [_hit(1, doc, 0)])
    assert ans.no_answer or doc[ans.start : ans.end] == ans.text  # type: ignore[misc]
    assert len(reader.char_logits(question, [doc])[0].start) == len(doc)
    # a short question is read as it is
    assert reader.clip_question("落地多少个项目？") == "落地多少个项目？"


def test_reader_refuses_a_question_budget_the_window_cannot_hold(tiny_qa: Path) -> None:
    from policyqa.answer.reader import TransformersReader

    with pytest.raises(ValueError, match="max_question_tokens"):
        TransformersReader(tiny_qa, max_seq_length=48, stride=16, max_question_tokens=40)
    assert TransformersReader(tiny_qa).max_question_tokens == 128
