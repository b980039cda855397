"""The built-in cross-encoder: the adapter merge, the focus window, and fusion with the retriever."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from policyqa.retriever.base import Hit
from policyqa.retriever.rerank import CrossEncoderReranker, focus_window, zscores
from policyqa.retriever.rerank.builtin import INFO_FILE, cross_encoder_info, merge_cross_encoder
from tests.helpers import TINY_ZH_VOCAB, save_tiny_bert

QUESTION = "重点项目一季度落地多少个？"


def _hit(i: int, text: str, fused: float) -> Hit:
    return Hit(
        chunk_id=f"c{i}",
        doc_id=f"d{i}",
        score=fused,
        rank=i,
        text=text,
        start=0,
        end=len(text),
        scores={"fused": fused},
        ranks={"fused": i},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    """A tiny base BERT, a LoRA cross-encoder over its first layer with non-zero factors (as
    after training), and the adapter file the trainer writes for it."""
    torch = pytest.importorskip("torch")
    from policyqa.train.cross_encoder import build_model, save_cross_encoder_adapter

    root = tmp_path_factory.mktemp("builtin-ce")
    base = save_tiny_bert(root / "base", "BertModel", TINY_ZH_VOCAB, num_hidden_layers=3)
    model = build_model(base, layers=1, rank=2, alpha=4.0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    model.eval()
    adapter = root / "ce.safetensors"
    info = {"layers": 1, "rank": 2, "alpha": 4.0, "max_length": 32, "window_chars": 12, "fuse_weight": 0.5}
    save_cross_encoder_adapter(model, adapter, info)
    return base, adapter, model


def test_the_merged_model_scores_as_the_trained_one(
    trained: tuple[Path, Path, object], tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base, adapter, model = trained
    assert cross_encoder_info(adapter)["layers"] == 1
    out = merge_cross_encoder(base, adapter, tmp_path / "merged")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["num_hidden_layers"] == 1 and config["num_labels"] == 1
    assert json.loads((out / INFO_FILE).read_text(encoding="utf-8"))["fuse_weight"] == 0.5
    merged = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(base))
    enc = tok(
        [QUESTION, "多少"], ["一季度计划落地28个重点项目", "青岛市南区"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        want = model(**enc).logits  # type: ignore[operator]
        got = merged(**enc).logits
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)


def test_a_file_that_is_not_a_cross_encoder_adapter_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(2, dtype=np.float32)}, str(other))
    with pytest.raises(ValueError, match="no 'policyqa_cross_encoder' metadata"):
        cross_encoder_info(other)


def test_focus_window_keeps_the_sentence_closest_to_the_question() -> None:
    text = "全区经济平稳。今年一季度计划落地重点项目28个。其余工作照常。再说别的事情很长很长。"
    assert focus_window(QUESTION, text, 200) == text  # fits: whole
    # the second sentence (17 characters) shares the most bigrams; the next one (7) joins first,
    # then the one before (7) when the one after that (11) no longer fits
    assert focus_window(QUESTION, text, 24) == "今年一季度计划落地重点项目28个。其余工作照常。"
    assert focus_window(QUESTION, text, 31) == "全区经济平稳。今年一季度计划落地重点项目28个。其余工作照常。"
    assert focus_window(QUESTION, text, 17) == "今年一季度计划落地重点项目28个。"
    assert focus_window(QUESTION, text, 5) == "今年一季度"  # a sentence longer than the window: cut
    with pytest.raises(ValueError):
        focus_window(QUESTION, text, 0)


def test_fusion_with_the_retriever_score(trained: tuple[Path, Path, object], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from policyqa.retriever.rerank import export_cross_encoder_onnx

    base, adapter, _ = trained
    out = merge_cross_encoder(base, adapter, tmp_path / "merged")
    export_cross_encoder_onnx(out)
    hits = [
        _hit(1, "青岛市南区今年计划落地项目", 3.0),
        _hit(2, "一季度重点项目落地28个", 1.0),
        _hit(3, "多少个项目在市南区", 2.0),
    ]
    alone = CrossEncoderReranker(out, max_length=32, window_chars=12)
    fused = CrossEncoderReranker(out, max_length=32, window_chars=12, fuse_weight=0.5)
    logits = alone.logits([(QUESTION, alone.passage(QUESTION, h)) for h in hits])
    want = zscores([3.0, 1.0, 2.0]) + 0.5 * zscores(logits)
    got = fused.rerank(QUESTION, hits)
    assert [h.chunk_id for h in got] == [hits[i].chunk_id for i in np.argsort(-want, kind="stable")]
    assert sorted(h.scores["rerank"] for h in got) == pytest.approx(sorted(want.tolist()))
    # by the cross-encoder alone: sigmoid of the logits, in the logits' order
    assert [h.chunk_id for h in alone.rerank(QUESTION, hits)] == [
        hits[i].chunk_id for i in np.argsort(-np.asarray(logits), kind="stable")
    ]
    with pytest.raises(ValueError):
        CrossEncoderReranker(out, fuse_weight=-1.0)
    with pytest.raises(ValueError):
        CrossEncoderReranker(out, window_chars=0)


def test_builtin_needs_a_cache_dir() -> None:
    with pytest.raises(ValueError, match="needs a cache_dir"):
        CrossEncoderReranker("builtin").warm_up()


def test_an_adapter_file_as_the_model_is_merged_into_the_cache_once(
    trained: tuple[Path, Path, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    base, adapter, _ = trained
    calls: list[Path] = []

    def tiny_base(cache_dir: Path, show_progress: bool = True) -> Path:
        calls.append(cache_dir)
        return base

    monkeypatch.setattr("policyqa.index.e5convert.ensure_default_model", tiny_base)
    reranker = CrossEncoderReranker(str(adapter), cache_dir=tmp_path / "cache")
    reranker.warm_up()
    # the adapter brings its window, its length and its fusion weight
    assert (reranker.window_chars, reranker.max_length, reranker.fuse_weight) == (12, 32, 0.5)
    assert (
        reranker.active_backend == "onnx-int8"
        and Path(reranker.model).parent == tmp_path / "cache" / "models"
    )
    hits = [_hit(1, "青岛市南区今年计划落地项目", 3.0), _hit(2, "一季度重点项目落地28个", 1.0)]
    assert {h.chunk_id for h in reranker.rerank(QUESTION, hits)} == {"c1", "c2"}
    again = CrossEncoderReranker(str(adapter), cache_dir=tmp_path / "cache")
    again.warm_up()
    assert again.model == reranker.model and len(calls) == 1  # built once, then found


def test_a_missing_adapter_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a package without its adapter (a damaged install)
    monkeypatch.setattr("policyqa.retriever.rerank.builtin.DEFAULT_CROSS_ENCODER_ADAPTER", tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match="POLICYQA_RERANK_MODEL"):
        CrossEncoderReranker("builtin", cache_dir=tmp_path).warm_up()
    with pytest.raises(FileNotFoundError, match="adapter nope.safetensors not found"):
        CrossEncoderReranker(str(tmp_path / "nope.safetensors"), cache_dir=tmp_path).warm_up()


@pytest.mark.slow
def test_the_shipped_cross_encoder_ranks_the_answering_passage_first(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The adapter in the package merges into the real converted e5-small, exports to int8 ONNX
    and, between passages the retriever scored alike, puts the one that answers first."""
    pytest.importorskip("onnxruntime")
    from policyqa.index.e5convert import ensure_default_model
    from policyqa.retriever.rerank.builtin import BUILTIN_CROSS_ENCODER, DEFAULT_CROSS_ENCODER_ADAPTER

    info = cross_encoder_info(DEFAULT_CROSS_ENCODER_ADAPTER)
    assert info["layers"] == 12 and info["fuse_weight"] == 0.75
    assert set(info["trained_on"]) == {"DRCD_dev", "cmrc2018_dev", "msgabench-dev", "ncpqa-dev"}
    cache = tmp_path_factory.mktemp("ce-cache")
    ensure_default_model(cache, show_progress=False)
    reranker = CrossEncoderReranker(BUILTIN_CROSS_ENCODER, cache_dir=cache)
    reranker.warm_up()
    assert reranker.active_backend == "onnx-int8"
    assert (reranker.fuse_weight, reranker.window_chars, reranker.max_length) == (0.75, 160, 128)
    hits = [
        _hit(1, "区政府办公室关于做好春节期间安全生产工作的通知。各街道要加强巡查，落实责任。", 1.0),
        _hit(2, "市南区今年一季度计划落地重点项目28个，总投资120亿元，其中产业项目15个。", 1.0),
        _hit(3, "住房公积金贷款最高额度为120万元，缴存满一年方可申请。", 1.0),
    ]
    assert reranker.rerank(QUESTION, hits)[0].chunk_id == "c2"
