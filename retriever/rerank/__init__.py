"""The rerank stage (one module per reranker): re-order a retriever's candidates with a finer (and slower) scorer.

Every reranker implements :class:`Reranker`: ``rerank(query, hits, top_k) -> hits``. The hits
come back re-ranked, each with the score breakdown it had (``bm25``, ``dense``, ``fused`` and
their ranks) plus ``scores["rerank"]`` and ``ranks["rerank"]``; ``Hit.score`` and ``Hit.rank``
become the rerank score and rank.

Four implementations:

``NoReranker`` (``none``)
    Keeps the retriever's order.
``SentenceReranker`` (``sentence``, the default)
    Sentence-level dense max-sim: each candidate's best sentence similarity to the question
    (sentences embedded at index time with the index's encoder, read from the embedding cache)
    fused with the retriever's score and the feature model's score (below). Weights chosen on
    the ncpqa-dev train half; results per half in ``eval/results/``.
``FeatureReranker`` (``features``)
    A linear learning-to-rank model over interpretable features of each candidate (its BM25 and
    dense scores and ranks, the fused rank, IDF-weighted query-term coverage of the passage, of
    its best sentence and of the document title, character-bigram coverage, number match and
    how strongly the rest of its document is represented among the candidates). It needs
    nothing but the index that is already open, runs in a few milliseconds for 20 candidates
    on 2 CPU cores, and its weights are a small JSON file (``retriever/data/rerank_features.json``)
    written by ``python -m policyqa.train.rerank``.
``CrossEncoderReranker`` (``cross-encoder``)
    Any sentence-transformers ``CrossEncoder`` by name or local path (e.g. bge-reranker-v2-m3,
    bce-reranker-base_v1); batched, inputs cut at ``max_length`` tokens; when the model directory
    holds an int8 ONNX export (``onnx/model_int8.onnx``, see :func:`export_cross_encoder_onnx`)
    it runs that with onnxruntime instead of torch.
"""

from .base import NoReranker, Reranker, apply_rerank_scores, check_rerank_top_k, document_best, zscores
from .builtin import BUILTIN_CROSS_ENCODER, ensure_builtin_cross_encoder
from .cross_encoder import CrossEncoderReranker, focus_window, pair_text
from .features import DEFAULT_FEATURE_MODEL, FEATURE_NAMES, FeatureModel, FeatureReranker, candidate_features
from .onnx import export_cross_encoder_onnx
from .sentence import DEFAULT_FEATURE_WEIGHT, DEFAULT_SENTENCE_WEIGHT, SentenceReranker

__all__ = [
    "BUILTIN_CROSS_ENCODER",
    "DEFAULT_FEATURE_MODEL",
    "DEFAULT_FEATURE_WEIGHT",
    "DEFAULT_SENTENCE_WEIGHT",
    "FEATURE_NAMES",
    "CrossEncoderReranker",
    "FeatureModel",
    "FeatureReranker",
    "NoReranker",
    "Reranker",
    "SentenceReranker",
    "apply_rerank_scores",
    "candidate_features",
    "check_rerank_top_k",
    "document_best",
    "ensure_builtin_cross_encoder",
    "export_cross_encoder_onnx",
    "focus_window",
    "pair_text",
    "zscores",
]
