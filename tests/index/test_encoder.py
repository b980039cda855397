"""The dense encoder (policyqa.index.encoder) and the ONNX export (policyqa.index.onnx_export).

A tiny random BERT saved by the test runs through every backend; one ``slow`` test runs the
real converted default model through ONNX int8 against torch fp32.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from policyqa.index import onnx_export
from policyqa.index.encoder import BGE_ZH_QUERY_PROMPT, Encoder, _default_prompts
from policyqa.settings import DEFAULT_MODEL

TEXTS = [
    "国务院关于印发数字经济发展规划的通知",
    "policy",
    "第一条 为了规范行政许可的设定和实施，保护公民、法人和其他组织的合法权益，根据宪法，制定本法。",
    "",
    "abc 123",
    "税收优惠政策",
    "x" * 3,
]
BACKENDS = ["torch", "onnx", "onnx-int8"]


@pytest.fixture(scope="module")
def encoders(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Encoder]:
    cache = tmp_path_factory.mktemp("enc-cache")
    return {b: Encoder(str(tiny_model), b, cache, batch_size=3).warm_up() for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_shapes_and_normalisation(encoders: dict[str, Encoder], backend: str) -> None:
    enc = encoders[backend]
    assert enc.dim == 32
    for out in (enc.encode_passages(TEXTS), enc.encode_queries(TEXTS)):
        assert out.shape == (len(TEXTS), 32)
        assert out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    empty = enc.encode_passages([])
    assert empty.shape == (0, 32) and empty.dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
def test_order_is_preserved_under_length_sorting(encoders: dict[str, Encoder], backend: str) -> None:
    enc = encoders[backend]
    batched = enc.encode_passages(TEXTS)  # batch_size 3: sorted by length, padded
    one_by_one = np.vstack([enc.encode_passages([t]) for t in TEXTS])
    reversed_ = enc.encode_passages(TEXTS[::-1])[::-1]
    if backend == "onnx-int8":
        # dynamic int8 scales activations per batch tensor: equal up to quantisation noise
        assert (batched * one_by_one).sum(axis=1).min() >= 0.9999
        assert (batched * reversed_).sum(axis=1).min() >= 0.9999
    else:
        np.testing.assert_allclose(batched, one_by_one, atol=2e-5)
        np.testing.assert_allclose(reversed_, batched, atol=2e-5)


@pytest.mark.parametrize(("backend", "min_cos"), [("onnx", 0.9999), ("onnx-int8", 0.99)])
def test_onnx_matches_torch(encoders: dict[str, Encoder], backend: str, min_cos: float) -> None:
    ref = encoders["torch"]
    for method in ("encode_passages", "encode_queries"):
        cos = (getattr(encoders[backend], method)(TEXTS) * getattr(ref, method)(TEXTS)).sum(axis=1)
        assert cos.min() >= min_cos, (method, cos)


def test_onnx_files_cached_in_the_model_dir(encoders: dict[str, Encoder], tiny_model: Path) -> None:
    onnx_dir = tiny_model / "onnx"
    assert (onnx_dir / "model.onnx").is_file() and (onnx_dir / "model_int8.onnx").is_file()
    info = json.loads((onnx_dir / "export_info.json").read_text())
    assert info["files"]["model.onnx"]["min_cosine_vs_torch"] >= 0.9999
    assert info["files"]["model_int8.onnx"]["min_cosine_vs_torch"] >= 0.99
    # the FFN output projections stay fp32 in the int8 graph, attention output is quantised
    kept = onnx_export.ffn_output_matmuls(onnx_dir / "model.onnx")
    assert len(kept) == 2 and all("attention" not in name for name in kept)
    before = (onnx_dir / "model_int8.onnx").stat().st_mtime_ns
    Encoder(str(tiny_model), "onnx-int8", encoders["torch"].cache_dir).warm_up()
    assert (onnx_dir / "model_int8.onnx").stat().st_mtime_ns == before  # not exported again


def test_prompts_model_own_and_explicit(encoders: dict[str, Encoder], tiny_model: Path) -> None:
    enc = encoders["onnx"]
    assert (enc.query_prompt, enc.passage_prompt) == ("q: ", "p: ")
    q, p = enc.encode_queries(["税收优惠政策"]), enc.encode_passages(["税收优惠政策"])
    assert float((q * p).sum()) < 0.99999
    same = Encoder(str(tiny_model), "onnx", enc.cache_dir, query_prompt="p: ")
    np.testing.assert_allclose(same.encode_queries(["税收优惠政策"]), p, atol=1e-6)
    none = Encoder(str(tiny_model), "onnx", enc.cache_dir, query_prompt="", passage_prompt="")
    np.testing.assert_allclose(none.encode_queries(["a b"]), none.encode_passages(["a b"]), atol=1e-6)
    assert none.model_id != enc.model_id  # non-default prompts change the embeddings


def test_default_prompt_rules() -> None:
    assert _default_prompts("intfloat/multilingual-e5-base", {}) == ("query: ", "passage: ")
    assert _default_prompts("/models/my-e5-small", {}) == ("query: ", "passage: ")
    assert _default_prompts("BAAI/bge-small-zh-v1.5", {}) == (BGE_ZH_QUERY_PROMPT, "")
    assert _default_prompts("BAAI/bge-small-en-v1.5", {}) == ("", "")
    assert _default_prompts("sentence-transformers/all-MiniLM-L6-v2", {}) == ("", "")
    assert _default_prompts("x", {"query": "Q: ", "document": "D: "}) == ("Q: ", "D: ")


def test_count_tokens_includes_prompt_and_specials(encoders: dict[str, Encoder], tiny_model: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    for backend in BACKENDS:
        counts = encoders[backend].count_tokens(TEXTS)
        assert counts == [len(tok.encode("p: " + t).ids) for t in TEXTS]
    assert encoders["torch"].count_tokens([""]) == [4]  # [CLS] p : [SEP]
    assert encoders["torch"].count_tokens([]) == []


def test_truncation_at_max_seq_length(tiny_model: Path, encoders: dict[str, Encoder]) -> None:
    cache = encoders["torch"].cache_dir
    long_text = "政策" * 100
    short = {b: Encoder(str(tiny_model), b, cache, max_seq_length=16) for b in BACKENDS}
    assert short["onnx"].max_seq_length == 16
    assert Encoder(str(tiny_model), "onnx", cache, max_seq_length=10_000).max_seq_length == 64  # model limit
    assert short["onnx"].count_tokens([long_text]) == [1 + 2 + 200 + 1]  # [CLS] p : ... [SEP], not truncated
    ref = short["torch"].encode_passages([long_text, "政策"])
    for backend in ("onnx", "onnx-int8"):
        out = short[backend].encode_passages([long_text, "政策"])
        assert (out * ref).sum(axis=1).min() >= 0.99
    assert "+max16" in short["onnx"].model_id


def test_cls_pooling(make_tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny-cls", pooling="cls", seed=3)
    torch_enc = Encoder(str(model), "torch", tmp_path / "cache")
    onnx_enc = Encoder(str(model), "onnx", tmp_path / "cache")
    assert onnx_enc.info.pooling == "cls"
    cos = (torch_enc.encode_passages(TEXTS) * onnx_enc.encode_passages(TEXTS)).sum(axis=1)
    assert cos.min() >= 0.9999


def test_read_only_model_exports_into_the_cache(
    make_tiny_model: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_tiny_model(tmp_path / "ro-model", seed=4)
    monkeypatch.setattr(onnx_export, "_is_writable_dir", lambda path: False)
    enc = Encoder(str(model), "onnx", tmp_path / "cache").warm_up()
    assert not (model / "onnx").exists()
    exported = list((tmp_path / "cache" / "onnx").glob("ro-model-*/model.onnx"))
    assert len(exported) == 1
    assert enc.encode_passages(["政策"]).shape == (1, 32)


def test_model_id_is_stable_and_names_the_backend(tiny_model: Path, encoders: dict[str, Encoder]) -> None:
    ids = {b: encoders[b].model_id for b in BACKENDS}
    assert ids["onnx-int8"].endswith("@onnx-int8") and ids["torch"].endswith("@torch")
    assert ids["onnx"].startswith("tiny-bert-")
    assert Encoder(str(tiny_model), "onnx", encoders["torch"].cache_dir).model_id == ids["onnx"]
    copy = tiny_model.parent / "tiny-bert-copy"
    shutil.copytree(tiny_model, copy)
    assert Encoder(str(copy), "onnx", encoders["torch"].cache_dir).model_id != ids["onnx"]


def test_input_validation(encoders: dict[str, Encoder], tmp_path: Path) -> None:
    enc = encoders["onnx"]
    with pytest.raises(TypeError, match="single string"):
        enc.encode_passages("not a list")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        enc.encode_queries(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="bytes"):
        enc.count_tokens([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown encoder backend"):
        Encoder("x", "tensorflow", tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        Encoder("x", "onnx", tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="not a directory"):
        (tmp_path / "file").write_text("x")
        Encoder(str(tmp_path / "file"), "onnx", tmp_path).warm_up()


def test_constructor_is_cheap(tmp_path: Path) -> None:
    enc = Encoder("no/such-model-anywhere", "onnx-int8", tmp_path)  # nothing resolved or loaded
    assert repr(enc) == "Encoder(model='no/such-model-anywhere', backend='onnx-int8')"
    assert not (tmp_path / "models").exists()


@pytest.mark.slow
def test_default_model_onnx_int8_matches_torch(e5_cache_dir: Path) -> None:
    texts = [
        "国务院关于印发《“十四五”数字经济发展规划》的通知",
        "对月销售额10万元以下（含本数）的增值税小规模纳税人，免征增值税。",
        "住房公积金缴存比例不低于5%，不高于12%。",
        "How are small and micro enterprises supported by tax policy?",
        "公积金",
    ]
    torch_enc = Encoder(DEFAULT_MODEL, "torch", e5_cache_dir)
    int8 = Encoder(DEFAULT_MODEL, "onnx-int8", e5_cache_dir)
    assert int8.model_id == "multilingual-e5-small@onnx-int8"
    assert (int8.query_prompt, int8.passage_prompt) == ("query: ", "passage: ")
    assert int8.dim == 384 and int8.max_seq_length == 512
    for method in ("encode_queries", "encode_passages"):
        cos = (getattr(int8, method)(texts) * getattr(torch_enc, method)(texts)).sum(axis=1)
        assert cos.min() >= 0.99, (method, cos)
    # the relevant passage still wins under int8
    q = int8.encode_queries(["小规模纳税人增值税减免"])
    assert int((int8.encode_passages(texts) @ q.T).argmax()) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_repeated_query_is_embedded_once(
    encoders: dict[str, Encoder], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policyqa.index.encoder import RECENT_QUERIES

    enc = encoders[backend]
    calls: list[list[str]] = []
    real = enc._encode

    def counting(texts: list[str], prompt: str) -> np.ndarray:
        calls.append(list(texts))
        return real(texts, prompt)

    monkeypatch.setattr(enc, "_encode", counting)
    first = enc.encode_queries(["税收优惠政策有哪些？"])
    again = enc.encode_queries(["税收优惠政策有哪些？"])
    assert calls == [["税收优惠政策有哪些？"]]
    np.testing.assert_array_equal(first, again)
    again[0, 0] = 99.0  # a copy: the kept vector is not changed through it
    np.testing.assert_array_equal(enc.encode_queries(["税收优惠政策有哪些？"]), first)
    # the same text as a passage, or inside a batch, is encoded as before
    enc.encode_passages(["税收优惠政策有哪些？"])
    batch = enc.encode_queries(["税收优惠政策有哪些？", "policy"])
    assert len(calls) == 3
    assert float(batch[0] @ first[0]) >= 0.9999  # (int8 scales per batch tensor)
    # at most RECENT_QUERIES are kept: the oldest is embedded again
    for i in range(RECENT_QUERIES):
        enc.encode_queries([f"问题{i}"])
    calls.clear()
    enc.encode_queries(["税收优惠政策有哪些？"])
    assert calls == [["税收优惠政策有哪些？"]]
    # forget_queries drops them all: the next query is embedded anew
    enc.encode_queries(["问题0"])
    enc.forget_queries()
    calls.clear()
    enc.encode_queries(["税收优惠政策有哪些？"])
    assert calls == [["税收优惠政策有哪些？"]]
