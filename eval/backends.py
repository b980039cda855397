"""The index backends as the benchmark suite builds and opens them (``policyqa eval --backend``).

A benchmark index never overwrites what a service reads: the embedded one lives in the eval
cache (:func:`policyqa.eval.runner.prepare_index`), and with a configured Milvus the collections
get a name of their own (:func:`eval_settings`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from policyqa.corpus.models import Document
from policyqa.index.dense import PassageEncoder
from policyqa.index.milvus import MilvusIndex, build_milvus_index, open_milvus_index
from policyqa.settings import Settings

__all__ = ["build_for_eval", "eval_settings", "open_for_eval"]


def eval_settings(target: Path, settings: Settings) -> Settings:
    """Settings for a benchmark index at ``target``.

    With Milvus Lite (no URI) the collections live in ``<target>-milvus.db``. With a configured
    Milvus they get their own name, ``<milvus_collection>_eval_<hash of target>``, so a
    benchmark never overwrites the collections a service reads.
    """
    if not settings.milvus_uri:
        return settings
    digest = hashlib.sha1(str(Path(target).expanduser().resolve()).encode()).hexdigest()[:12]
    return settings.model_copy(update={"milvus_collection": f"{settings.milvus_collection}_eval_{digest}"})


def build_for_eval(
    documents: Iterable[Document],
    target: Path,
    settings: Settings,
    *,
    show_progress: bool = True,
    encoder: PassageEncoder | None = None,
) -> dict[str, Any]:
    """``build_index``-shaped builder of :func:`policyqa.eval.runner.prepare_index`."""
    return build_milvus_index(
        documents,
        eval_settings(target, settings),
        index_dir=target,
        encoder=encoder,
        show_progress=show_progress,
    )


def open_for_eval(target: Path, settings: Settings) -> MilvusIndex:
    """``open_index``-shaped opener of :func:`policyqa.eval.runner.prepare_index`.

    Collections built with other settings or fields raise, so the benchmark cache rebuilds them.
    """
    return open_milvus_index(eval_settings(target, settings), index_dir=target, strict=True)
