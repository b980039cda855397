"""The built-in reader's LoRA adapter: training labels, saving, merging into a QA model.

A tiny BERT built here stands in for multilingual-e5-small; the code paths are the real ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyqa.retriever.base import Hit
from tests.helpers import save_tiny_bert


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``BertModel`` directory laid out like the converted e5 model (no ``bert.`` prefix)."""
    pytest.importorskip("torch")
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-base") / "model", "BertModel")


def _lora_model(base: Path, rank: int = 4, alpha: float = 8.0) -> object:
    import torch
    from transformers import AutoModelForQuestionAnswering

    from policyqa.train.reader import add_lora

    torch.manual_seed(1)
    model = AutoModelForQuestionAnswering.from_pretrained(str(base), local_files_only=True)
    wrapped = add_lora(model, rank, alpha)
    assert len(wrapped) == 2 * 6
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn_like(p))
                if ".lora_" in name:  # the file keeps LoRA factors in float16
                    p.copy_(p.half().float())
    return model.eval()


def test_add_lora_trains_only_the_adapter_layernorms_and_head(tiny_base: Path) -> None:
    model = _lora_model(tiny_base)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]  # type: ignore[attr-defined]
    assert trainable
    for name in trainable:
        assert ".lora_" in name or "LayerNorm" in name or name.startswith("qa_outputs"), name
    assert not any("embeddings" in n for n in trainable)


def test_merged_model_matches_the_lora_model(tiny_base: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from policyqa.answer.lora import adapter_info, merge_adapter
    from policyqa.train.reader import save_adapter

    model = _lora_model(tiny_base)
    adapter = tmp_path / "adapter.safetensors"
    save_adapter(model, adapter, {"rank": 4, "alpha": 8.0, "split": "train"})
    assert adapter_info(adapter)["split"] == "train"

    out = merge_adapter(tiny_base, adapter, tmp_path / "merged")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertForQuestionAnswering"]
    merged = AutoModelForQuestionAnswering.from_pretrained(str(out), local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    enc = tok("多少个项目？", "力争一季度落地重点项目28个。", return_tensors="pt")
    with torch.no_grad():
        want = model(**enc)  # type: ignore[operator]
        got = merged(**enc)
    assert torch.allclose(want.start_logits, got.start_logits, atol=1e-4)
    assert torch.allclose(want.end_logits, got.end_logits, atol=1e-4)


def test_merged_reader_answers_verbatim(tiny_base: Path, tmp_path: Path) -> None:
    from policyqa.answer.lora import merge_adapter
    from policyqa.answer.reader import TransformersReader
    from policyqa.train.reader import save_adapter

    adapter = tmp_path / "adapter.safetensors"
    save_adapter(_lora_model(tiny_base), adapter, {"rank": 4, "alpha": 8.0})
    out = merge_adapter(tiny_base, adapter, tmp_path / "merged")
    doc = "青岛市南区。力争一季度落地重点项目28个，计划年内完成。"
    hit = Hit(chunk_id="c1", doc_id="d1", score=1.0, rank=1, text=doc[6:], start=6, end=len(doc), title="")
    ans = TransformersReader(out, min_confidence=0.0, max_seq_length=48, stride=16).select("多少个？", [hit])
    assert not ans.no_answer
    assert ans.start is not None and ans.end is not None
    assert doc[ans.start : ans.end] == ans.text


def test_adapter_info_rejects_other_safetensors(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    from policyqa.answer.lora import adapter_info
    from policyqa.train.reader import save_adapter

    other = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(2, dtype=np.float32)}, str(other))
    with pytest.raises(
        ValueError, match="not a policyqa adapter of this kind .no .policyqa_reader. metadata"
    ):
        adapter_info(other)
    with pytest.raises(ValueError, match="rank"):
        save_adapter(object(), tmp_path / "a.safetensors", {})


def test_featurize_labels_point_at_the_answer(tiny_base: Path) -> None:
    from transformers import AutoTokenizer

    from policyqa.train.reader import ReaderExample, featurize

    tok = AutoTokenizer.from_pretrained(str(tiny_base), local_files_only=True)
    ctx = "青岛市南区。力争一季度落地重点项目28个，计划年内完成。" * 3
    a = ctx.index("重点项目")
    feats = featurize(
        tok,
        [ReaderExample("落地什么？", ctx, a, a + 4), ReaderExample("落地什么？", ctx, -1, -1)],
        max_length=32,
        stride=8,
    )
    assert len(feats) > 2  # the long context is read in several windows
    labelled = [f for f in feats if f.start > 0]
    assert labelled
    for f in labelled:
        assert tok.decode(f.input_ids[f.start : f.end + 1]).replace(" ", "") == "重点项目"
    negatives = feats[-1]
    assert (negatives.start, negatives.end) == (0, 0)


def test_builtin_reader_is_selected_by_settings_without_loading(tmp_path: Path) -> None:
    from policyqa.answer.lora import BUILTIN_MAX_ANSWER_TOKENS, DEFAULT_ADAPTER, adapter_info
    from policyqa.answer.reader import TransformersReader
    from policyqa.qa import make_answerer
    from policyqa.settings import Settings

    answerer = make_answerer(Settings(cache_dir=tmp_path, answer_reader="builtin"))
    assert isinstance(answerer, TransformersReader)
    assert answerer.max_answer_tokens == BUILTIN_MAX_ANSWER_TOKENS
    assert not (tmp_path / "models").exists()  # nothing is built before warm_up
    info = adapter_info(DEFAULT_ADAPTER)
    assert info["split"] == "train"  # the shipped adapter never saw the test questions
    assert info["base_model"] == "multilingual-e5-small"


def test_a_reader_narrows_the_selectors_sentence_verbatim(tiny_base: Path, tmp_path: Path) -> None:
    from policyqa.answer.lora import merge_adapter
    from policyqa.answer.reader import TransformersReader
    from policyqa.answer.selector import SpanSelector
    from policyqa.answer.types import verify_answer
    from policyqa.train.reader import save_adapter

    adapter = tmp_path / "adapter.safetensors"
    save_adapter(_lora_model(tiny_base), adapter, {"rank": 4, "alpha": 8.0})
    reader = TransformersReader(
        merge_adapter(tiny_base, adapter, tmp_path / "merged"), max_seq_length=48, stride=16
    )
    doc = "青岛市南区。力争一季度落地重点项目28个，计划年内完成。另有其他工作。"
    start = 6
    hit = Hit(
        chunk_id="c1", doc_id="d1", score=1.0, rank=1, text=doc[start:], start=start, end=len(doc), title=""
    )
    plain = SpanSelector(min_confidence=0.0).select("一季度落地多少个重点项目？", [hit])
    narrowed = SpanSelector(min_confidence=0.0, narrow_reader=reader).select(
        "一季度落地多少个重点项目？", [hit]
    )
    assert narrowed.answer_type == "reader"
    assert narrowed.sentence == plain.sentence  # the selector's sentence(s), narrowed inside
    assert narrowed.text and narrowed.text in narrowed.sentence
    assert narrowed.start is not None and narrowed.end is not None
    assert doc[narrowed.start : narrowed.end] == narrowed.text
    verify_answer(narrowed, doc)
    # the reader's span never leaves the window it is given
    got = reader.best_span_within("多少个？", hit.text, 3, 9)
    assert got is not None and 3 <= got[0] < got[1] <= 9
    assert reader.best_span_within("多少个？", hit.text, 5, 5) is None


def test_narrow_reader_setting_builds_a_selector_with_a_reader(tmp_path: Path) -> None:
    from policyqa.answer.reader import TransformersReader
    from policyqa.answer.selector import SpanSelector
    from policyqa.qa import make_answerer
    from policyqa.settings import Settings

    answerer = make_answerer(Settings(cache_dir=tmp_path, answer_narrow_reader="builtin"))
    assert isinstance(answerer, SpanSelector)
    assert isinstance(answerer.narrow_reader, TransformersReader)
    assert not (tmp_path / "models").exists()
