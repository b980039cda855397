"""Typed records for documents and their chunks.

A :class:`Chunk` keeps character offsets into its document's ``text`` so that every passage
shown to a user can be traced back verbatim: ``document.text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DOC_ID_MAX_CHARS",
    "DOC_ID_PATTERN",
    "Chunk",
    "DocMeta",
    "Document",
    "doc_id_problem",
    "stable_id",
]

_SEG_CHAR = r"[^/\\\x00-\x1f\x7f]"  # anything but a slash, a backslash or a control character
_SEG_START = r"[^/\\.\x00-\x1f\x7f]"  # … and not a dot
#: What a document id may be, as a regex (the API's schema states it): path-like segments joined
#: by single ``/`` (LawRefBook ids are ``部门规章/市场监督管理总局/…``), none empty, ``.`` or
#: ``..``, no backslash and no control character, so that ``/documents/{id}`` reaches every id.
DOC_ID_PATTERN = (
    rf"^(?:{_SEG_START}{_SEG_CHAR}*|\.{_SEG_START}{_SEG_CHAR}*|\.\.{_SEG_CHAR}+)"
    rf"(?:/(?:{_SEG_START}{_SEG_CHAR}*|\.{_SEG_START}{_SEG_CHAR}*|\.\.{_SEG_CHAR}+))*$"
)
#: The longest document id.
DOC_ID_MAX_CHARS = 512
_DOC_ID_RE = re.compile(DOC_ID_PATTERN)


def doc_id_problem(doc_id: str) -> str | None:
    """Why ``doc_id`` cannot be a document id (it would be stored but unreachable by URL), or None."""
    if not doc_id or doc_id != doc_id.strip():
        return "a document id may not be empty or start or end with whitespace"
    if len(doc_id) > DOC_ID_MAX_CHARS:
        return f"a document id is at most {DOC_ID_MAX_CHARS} characters (this one has {len(doc_id)})"
    if _DOC_ID_RE.match(doc_id):
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in doc_id):
        return "a document id may not contain control characters"
    if "\\" in doc_id:
        return "a document id may not contain a backslash"
    return (
        f"document id {doc_id!r} has an empty, '.' or '..' path segment: use single '/' between "
        "non-empty segments, none of them '.' or '..'"
    )


def stable_id(*parts: str, length: int = 16) -> str:
    """A short, stable hex id derived from the given strings (sha1)."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:length]


@dataclass(slots=True)
class DocMeta:
    """Metadata of a policy document; every field is optional.

    ``date`` is an ISO date string ``YYYY-MM-DD`` (publish date, or the 成文日期 when that is
    all the text gives).
    """

    issuer: str | None = None  # 发文机关
    doc_number: str | None = None  # 发文字号, e.g. 国发〔2024〕3号
    date: str | None = None  # 发布/成文日期, ISO
    source: str | None = None  # file path or URL
    region: str | None = None  # 北京, 山东, 全国 …
    doc_type: str | None = None  # 通知, 意见, 法律, 地方性法规, 新闻 …
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocMeta:
        known = {k: data.get(k) for k in ("issuer", "doc_number", "date", "source", "region", "doc_type")}
        return cls(**known, extra=dict(data.get("extra") or {}))


@dataclass(slots=True)
class Document:
    """One source document: its full text and metadata."""

    id: str
    title: str
    text: str
    meta: DocMeta = field(default_factory=DocMeta)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "meta": self.meta.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(
            id=str(data["id"]),
            title=str(data.get("title") or ""),
            text=str(data["text"]),
            meta=DocMeta.from_dict(dict(data.get("meta") or {})),
        )


@dataclass(slots=True, frozen=True)
class Chunk:
    """A passage of a document.

    ``text == document.text[start:end]`` always holds. ``heading`` is the structural path of
    the passage, e.g. ``第二章 总则 > 第十条``; ``ordinal`` is the chunk's position in its
    document (0-based).
    """

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    heading: str = ""
    ordinal: int = 0
