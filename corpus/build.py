"""What every loader does last: a document's id key, its text checked, its metadata filled.

- :func:`source_key`: the path string document ids are derived from (absolute, POSIX);
- :func:`require_text`: a file that gave no text is unreadable, with the reason given;
- :func:`finish_document`: the :class:`~policyqa.corpus.models.Document`, with the metadata the
  format did not give filled from the text (:func:`~policyqa.corpus.metadata.fill_missing`).
"""

from __future__ import annotations

from pathlib import Path

from .encoding import UnreadableFileError
from .metadata import fill_missing
from .models import DocMeta, Document

__all__ = ["finish_document", "require_text", "source_key"]


def source_key(path: Path) -> str:
    """The path string document ids are derived from (absolute, POSIX)."""
    return path.resolve().as_posix()


def finish_document(doc_id: str, title: str, text: str, meta: DocMeta) -> Document:
    """The document, with metadata the format did not give filled from its text."""
    fill_missing(meta, text, title)
    return Document(id=doc_id, title=title, text=text, meta=meta)


def require_text(path: Path, text: str, what: str = "no text") -> None:
    """Raise :class:`UnreadableFileError` (``what``) when ``text`` is blank."""
    if not text.strip():
        raise UnreadableFileError(path, what)
