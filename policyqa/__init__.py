"""policyqa: semantic search and extractive question answering over Chinese policy documents.

The stages, each a folder, in the order a question passes them: ``policyqa.corpus`` (documents
in), ``policyqa.index`` (storage), ``policyqa.retriever`` (candidates and reranking),
``policyqa.answer`` (the answer span); then the composition in this folder (``qa``: the query
pipeline; ``pipeline``: indexing by backend; ``conversation``, ``workqueue``, ``service``, the
CLI), and the front ends ``policyqa.api`` and ``policyqa.ui``. ``policyqa.eval`` (the benchmark
suite) and ``policyqa.train`` (training and research probes) sit on top. ``settings`` is the
ground every stage may import; the import contracts in pyproject.toml keep the direction.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("policyqa")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
