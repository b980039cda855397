"""policyqa: semantic search and extractive question answering over Chinese policy documents.

The root package holds the settings, the pipeline that wires the stages together and the CLI.
The stages live in the subpackages ``policyqa.corpus``, ``policyqa.index``,
``policyqa.retriever``, ``policyqa.api``, ``policyqa.ui`` and ``policyqa.eval``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("policyqa")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
