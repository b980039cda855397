"""Export a sentence-transformers (BERT / XLM-R-like) model to ONNX, fp32 and int8.

The exported graph maps ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the
model's forward takes them) with dynamic batch and sequence axes to ``last_hidden_state``;
pooling and normalisation stay in Python (``policyqa.index.encoder``). With ``head="qa"`` a
``*ForQuestionAnswering`` model is exported the same way to ``start_logits`` and ``end_logits``
(the answer reader, ``policyqa.answer.reader``), as ``qa.onnx`` / ``qa_int8.onnx``. The int8 variant is
onnxruntime's dynamic quantisation, per channel, with the feed-forward output projections
(``encoder.layer.N.output.dense``, not ``attention.output.dense``) kept in float32: measured
on multilingual-e5-small, full int8 was ~20 % faster but lost 0.02 R@1, this variant lost
nothing.

Exports are cached under ``<model_dir>/onnx/`` (or ``<cache_dir>/onnx/<model-hash>/`` when
the model directory is not writable), written atomically, once, and checked against a
freshly loaded torch model on padded batches (cosine of mean-pooled embeddings >= 0.9999 for
fp32, >= 0.99 for int8; for a QA model: the correlation of its start and end logits per
sequence, with the same bounds).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "FP32_NAME",
    "INT8_NAME",
    "OnnxParityError",
    "OnnxHead",
    "OnnxVariant",
    "ensure_onnx",
    "export_onnx",
    "ffn_output_matmuls",
    "mean_pool",
    "onnx_dir_for",
    "parity",
    "quantize_int8",
    "transformer_dir",
]

logger = logging.getLogger(__name__)

OnnxVariant = Literal["fp32", "int8"]
#: What the graph outputs: the encoder's hidden states, or a QA model's start/end logits.
OnnxHead = Literal["encoder", "qa"]
ONNX_SUBDIR = "onnx"
FP32_NAME = "model.onnx"
INT8_NAME = "model_int8.onnx"
QA_FP32_NAME = "qa.onnx"
QA_INT8_NAME = "qa_int8.onnx"
_FILE_NAMES: dict[tuple[str, str], str] = {
    ("encoder", "fp32"): FP32_NAME,
    ("encoder", "int8"): INT8_NAME,
    ("qa", "fp32"): QA_FP32_NAME,
    ("qa", "int8"): QA_INT8_NAME,
}
INFO_NAME = "export_info.json"
#: Bump when the exported graphs change, so cached exports are redone.
EXPORT_VERSION = 1
OPSET = 17
MIN_COSINE: dict[str, float] = {"fp32": 0.9999, "int8": 0.99}

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
#: The FFN output projection of each layer (BERT/XLM-R naming in the traced graph), but not
#: the attention output projection ``.../attention/output/dense/...``.
_FFN_OUTPUT_RE = re.compile(r"(?<!attention)/output/dense/MatMul")
_LAYER_RE = re.compile(r"layer\.\d+")

_PARITY_TEXTS = (
    "国务院关于印发《“十四五”数字经济发展规划》的通知",
    "第一条　为了规范行政许可的设定和实施，保护公民、法人和其他组织的合法权益，根据宪法，制定本法。",
    "How are small and micro enterprises supported by tax policy?",
    "公积金",
    "各省、自治区、直辖市人民政府，国务院各部委、各直属机构：现将《关于进一步优化营商环境更好服务市场主体的实施意见》"
    "印发给你们，请结合实际认真贯彻执行。2020年7月15日起施行，ＡＢＣ１２３。",
    "query: 个人所得税专项附加扣除包括哪些项目？",
    "passage: 纳税人的子女接受全日制学历教育的相关支出，按照每个子女每月1000元的标准定额扣除。",
    "x",
)


class OnnxParityError(RuntimeError):
    """The exported ONNX model does not reproduce the torch model closely enough."""


# --------------------------------------------------------------------------------------------
# locating things
# --------------------------------------------------------------------------------------------


def transformer_dir(model_dir: Path) -> Path:
    """The directory of the Transformer module of a sentence-transformers model dir.

    Reads ``modules.json`` (the Transformer is usually at ``""``, in older models at
    ``0_Transformer``); a plain transformers directory is returned as is.
    """
    model_dir = Path(model_dir)
    modules_file = model_dir / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        for module in modules:
            if str(module.get("type", "")).endswith("Transformer"):
                return model_dir / str(module.get("path", ""))
    if (model_dir / "config.json").is_file():
        return model_dir
    raise FileNotFoundError(f"{model_dir}: no Transformer module (modules.json) and no config.json")


def _weights_fingerprint(tdir: Path) -> dict[str, Any]:
    """Identity of the weights (names, sizes, mtimes) to detect a changed model."""
    out: dict[str, Any] = {}
    for name in (*_WEIGHT_FILES, "config.json"):
        path = tdir / name
        if path.is_file():
            st = path.stat()
            out[name] = [st.st_size, st.st_mtime_ns]
    return out


def _is_writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError:
        return False
    return True


def onnx_dir_for(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """Where the ONNX files of ``model_dir`` live.

    ``<model_dir>/onnx/`` when it can be written, else ``<cache_dir>/onnx/<hash>/`` with a
    hash of the model directory's resolved path.
    """
    model_dir = Path(model_dir)
    local = model_dir / ONNX_SUBDIR
    if _is_writable_dir(local):
        return local
    if cache_dir is None:
        raise PermissionError(f"{model_dir} is not writable and no cache_dir was given for its ONNX export")
    digest = hashlib.sha256(str(model_dir.resolve()).encode("utf-8")).hexdigest()[:16]
    return Path(cache_dir) / ONNX_SUBDIR / f"{model_dir.name}-{digest}"


# --------------------------------------------------------------------------------------------
# torch side
# --------------------------------------------------------------------------------------------


def _load_torch_model(tdir: Path, head: OnnxHead = "encoder") -> Any:
    """A fresh transformers model in eval mode, float32, eager attention (export-friendly)."""
    from transformers import AutoModel, AutoModelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)  # no "LOAD REPORT" for an unused pooler
    loader = AutoModelForQuestionAnswering if head == "qa" else AutoModel
    try:
        model = loader.from_pretrained(str(tdir), attn_implementation="eager", dtype="float32")
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval()
    return model


def _takes_token_type_ids(model: Any) -> bool:
    return "token_type_ids" in inspect.signature(model.forward).parameters


def _load_tokenizer(tdir: Path) -> Any:
    """The model's fast tokenizer (``tokenizers.Tokenizer``), from tokenizer.json if present."""
    from tokenizers import Tokenizer

    path = tdir / "tokenizer.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(str(tdir))
    backend = getattr(hf_tok, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{tdir}: no tokenizer.json and no fast tokenizer available")
    return backend


def pad_batch(
    encodings: Sequence[Sequence[int]], pad_id: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Right-pad token id lists: (input_ids, attention_mask), both int64 (batch, max_len)."""
    width = max((len(e) for e in encodings), default=0)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for i, enc in enumerate(encodings):
        ids[i, : len(enc)] = enc
        mask[i, : len(enc)] = 1
    return ids, mask


def mean_pool(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Mean of the hidden states over the unmasked tokens, then L2-normalised."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)


def _pad_id(tokenizer: Any) -> int:
    padding = tokenizer.padding
    if padding and "pad_id" in padding:
        return int(padding["pad_id"])
    for token in ("<pad>", "[PAD]", "<|endoftext|>"):
        idx = tokenizer.token_to_id(token)
        if idx is not None:
            return int(idx)
    return 0


def _parity_batches(
    tokenizer: Any, max_len: int, pairs: bool = False
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    texts: list[Any] = list(_PARITY_TEXTS)
    if pairs:  # (question, passage) as a reader sees them
        texts = [(texts[i], texts[(i + 1) % len(texts)]) for i in range(len(texts))]
    enc = [e.ids[:max_len] for e in tokenizer.encode_batch(texts)]
    pad = _pad_id(tokenizer)
    half = len(enc) // 2
    return [pad_batch(enc[:half], pad), pad_batch(enc[half:], pad)]


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the tracer/deprecation chatter of ``torch.onnx.export`` (not our code)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _atomic_target(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=".onnx", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)
    return Path(tmp)


def export_onnx(model_dir: Path, out_path: Path, opset: int = OPSET, head: OnnxHead = "encoder") -> Path:
    """Export the Transformer of ``model_dir`` to an fp32 ONNX file ``out_path`` (atomically);
    ``head="qa"``: the question-answering model's start and end logits."""
    import torch

    tdir = transformer_dir(model_dir)
    model = _load_torch_model(tdir, head)
    with_tt = _takes_token_type_ids(model)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_tt else [])
    outputs = ["start_logits", "end_logits"] if head == "qa" else ["last_hidden_state"]

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> Any:
            out = self.inner(**dict(zip(names, args, strict=True)))
            if head == "qa":
                return out.start_logits, out.end_logits
            return out[0]

    ids = torch.tensor([[0, 5, 6, 7, 8, 9, 2], [0, 5, 6, 2, 1, 1, 1]], dtype=torch.long)
    mask = (torch.arange(ids.shape[1])[None, :] < torch.tensor([[7], [4]])).long()
    args: tuple[torch.Tensor, ...] = (ids, mask) + ((torch.zeros_like(ids),) if with_tt else ())
    dynamic = {n: {0: "batch", 1: "sequence"} for n in (*names, *outputs)}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic_target(out_path)
    t0 = time.perf_counter()
    try:
        with _quiet_export(), torch.no_grad():
            torch.onnx.export(
                _Wrapper(model),
                args,
                str(tmp),
                input_names=names,
                output_names=outputs,
                dynamic_axes=dynamic,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("exported %s to ONNX %s in %.1fs", tdir, out_path, time.perf_counter() - t0)
    return out_path


def ffn_output_matmuls(onnx_path: Path) -> list[str]:
    """Names of the MatMul nodes of the per-layer FFN output projections (kept fp32 in int8)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and _FFN_OUTPUT_RE.search(node.name) and _LAYER_RE.search(node.name)
    ]


def quantize_int8(fp32_path: Path, out_path: Path, keep_ffn_output_fp32: bool = True) -> Path:
    """Dynamic per-channel int8 quantisation of ``fp32_path`` into ``out_path`` (atomically)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = ffn_output_matmuls(fp32_path) if keep_ffn_output_fp32 else []
    if keep_ffn_output_fp32 and not exclude:
        logger.warning("no FFN output MatMul found in %s: quantising every MatMul", fp32_path)
    out_path = Path(out_path)
    tmp = _atomic_target(out_path)
    t0 = time.perf_counter()
    previous_disable = logging.root.manager.disable
    try:
        # onnxruntime.quantization logs through the root logger ("consider pre-processing", ...)
        logging.disable(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(fp32_path),
                str(tmp),
                per_channel=True,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude,
                # fused contrib ops (Attention, SkipLayerNormalization...) defeat shape inference
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        os.replace(tmp, out_path)
    finally:
        logging.disable(previous_disable)
        tmp.unlink(missing_ok=True)
    logger.info(
        "quantised %s to int8 (%d FFN output MatMuls kept fp32) in %.1fs",
        out_path.name,
        len(exclude),
        time.perf_counter() - t0,
    )
    return out_path


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _logit_correlation(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]
) -> float:
    """Smallest per-sequence correlation of two logit arrays (batch, seq) over unmasked tokens."""
    worst = 1.0
    for row_a, row_b, m in zip(a, b, mask.astype(bool), strict=True):
        x = row_a[m] - row_a[m].mean()
        y = row_b[m] - row_b[m].mean()
        denom = float(np.linalg.norm(x) * np.linalg.norm(y))
        worst = min(worst, float(x @ y) / denom if denom > 0 else float(np.allclose(row_a[m], row_b[m])))
    return worst


def parity(model_dir: Path, onnx_path: Path, max_len: int = 128, head: OnnxHead = "encoder") -> float:
    """Minimum cosine between ONNX and a freshly loaded torch model over padded batches (for
    ``head="qa"``: the minimum correlation of the start and of the end logits per sequence)."""
    import torch

    tdir = transformer_dir(model_dir)
    tokenizer = _load_tokenizer(tdir)
    model = _load_torch_model(tdir, head)  # fresh: an exported torch object is not trusted
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int):  # (XLM-R positions start after the padding index)
        max_len = min(max_len, positions - 2)
    session = _session(onnx_path)
    inputs = {i.name for i in session.get_inputs()}
    worst = 1.0
    for ids, mask in _parity_batches(tokenizer, max_len, pairs=head == "qa"):
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        onnx_out = session.run(None, feed)
        with torch.no_grad():
            torch_out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        if head == "qa":
            for ours, theirs in zip(onnx_out, (torch_out.start_logits, torch_out.end_logits), strict=True):
                worst = min(worst, _logit_correlation(ours, theirs.numpy(), mask))
            continue
        cos = (mean_pool(onnx_out[0], mask) * mean_pool(torch_out[0].numpy(), mask)).sum(axis=1)
        worst = min(worst, float(cos.min()))
    return worst


# --------------------------------------------------------------------------------------------
# cached entry point
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        logger.info("waiting for another process exporting %s", path.parent)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _read_info(onnx_dir: Path) -> dict[str, Any]:
    try:
        info = json.loads((onnx_dir / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _write_info(onnx_dir: Path, info: dict[str, Any]) -> None:
    tmp = onnx_dir / f".{INFO_NAME}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, onnx_dir / INFO_NAME)


def ensure_onnx(
    model_dir: Path,
    variant: OnnxVariant = "int8",
    cache_dir: Path | None = None,
    verify: bool = True,
    head: OnnxHead = "encoder",
) -> Path:
    """Path of the cached ONNX export (``fp32`` or ``int8``) of ``model_dir``; exports once.

    The fp32 graph is exported first (the int8 one is derived from it). With ``verify`` each
    new file is checked against a fresh torch model; a failed check raises
    :class:`OnnxParityError` and the file is not kept. ``head="qa"``: a question-answering
    model (``qa.onnx`` / ``qa_int8.onnx``, see :func:`export_onnx`).
    """
    if head not in ("encoder", "qa"):
        raise ValueError(f"head must be 'encoder' or 'qa', got {head!r}")
    if variant not in MIN_COSINE:
        raise ValueError(f"variant must be 'fp32' or 'int8', got {variant!r}")
    model_dir = Path(model_dir)
    tdir = transformer_dir(model_dir)
    fingerprint = _weights_fingerprint(tdir)
    name = _FILE_NAMES[(head, variant)]
    fp32_name = _FILE_NAMES[(head, "fp32")]

    def fresh(info: dict[str, Any]) -> bool:
        return info.get("export_version") == EXPORT_VERSION and info.get("weights") == fingerprint

    def done(directory: Path) -> bool:
        info = _read_info(directory)
        return fresh(info) and (directory / name).is_file() and name in info.get("files", {})

    if done(model_dir / ONNX_SUBDIR):  # shipped or exported before (even if read-only now)
        return model_dir / ONNX_SUBDIR / name
    onnx_dir = onnx_dir_for(model_dir, cache_dir)
    onnx_dir.mkdir(parents=True, exist_ok=True)
    target = onnx_dir / name
    if done(onnx_dir):
        return target
    with _lock(onnx_dir / ".export.lock"):
        info = _read_info(onnx_dir)
        if not fresh(info):  # new or changed model: start over
            for stale in _FILE_NAMES.values():
                (onnx_dir / stale).unlink(missing_ok=True)
            info = {
                "export_version": EXPORT_VERSION,
                "weights": fingerprint,
                "source": str(tdir),
                "files": {},
            }
        files: dict[str, Any] = info.setdefault("files", {})
        fp32 = onnx_dir / fp32_name
        wanted = [(fp32_name, "fp32")] + ([(name, "int8")] if variant == "int8" else [])
        for fname, kind in wanted:
            path = onnx_dir / fname
            if path.is_file() and fname in files:
                continue
            if kind == "fp32":
                export_onnx(model_dir, path, head=head)
            else:
                quantize_int8(fp32, path)
            entry: dict[str, Any] = {"bytes": path.stat().st_size}
            if verify:
                cos = parity(model_dir, path, head=head)
                entry["min_cosine_vs_torch"] = round(cos, 6)
                logger.info(
                    "ONNX %s parity vs torch: min cosine %.6f (need >= %s)", kind, cos, MIN_COSINE[kind]
                )
                if cos < MIN_COSINE[kind]:
                    path.unlink(missing_ok=True)
                    raise OnnxParityError(
                        f"ONNX {kind} export of {model_dir} disagrees with torch: min cosine {cos:.5f} < "
                        f"{MIN_COSINE[kind]}; use the torch backend for this model"
                    )
            files[fname] = entry
            _write_info(onnx_dir, info)
    return target
