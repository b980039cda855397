"""Documents as a client gives them: uploaded files and JSON documents, checked and loaded.

A client's file name never reaches the file system: :func:`read_uploads` writes each file under
a sanitised name (:func:`safe_filename`) into a temporary folder of its own, checks its type and
content first (:func:`check_upload`; a ``.docx`` is also inflated with hard limits by the
loader, :mod:`policyqa.corpus.archive`), loads it with the corpus loaders and gives what it
yields ids and sources of the upload's name (uploading the same file again replaces it; no
server path is kept). Every file gets a :class:`FileStatus`: ``indexed`` or ``rejected`` with its
reason, and a bad file does not stop the others.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .loaders import KNOWN_EXTENSIONS, MEDIA_TYPES, load_path
from .metadata import extract_title, fill_missing
from .models import DocMeta, Document, doc_id_problem, stable_id
from .pdf import reading_warnings
from .word import LEGACY_WORD_EXTENSIONS, OLE_MAGIC

if TYPE_CHECKING:
    from .ocr import OcrReader
    from .originals import OriginalStore

__all__ = [
    "UNSUPPORTED_TYPE",
    "UPLOAD_EXTENSIONS",
    "FileStatus",
    "NewDocument",
    "UploadedFile",
    "check_upload",
    "read_uploads",
    "safe_filename",
]

logger = logging.getLogger(__name__)

#: File types an upload may have: those the corpus loaders read.
UPLOAD_EXTENSIONS: tuple[str, ...] = KNOWN_EXTENSIONS
#: The reason given for a file of a type no loader reads (the API answers 415 when all are).
UNSUPPORTED_TYPE = "unsupported file type"
_MAX_FILENAME_CHARS = 120
_MAX_FILENAME_BYTES = 200  # file systems allow 255 bytes; CJK takes 3 a character


@dataclass(slots=True, frozen=True)
class UploadedFile:
    """A file as a client sent it: its (untrusted) name, its bytes and the media type it was
    labelled with (which names the format when the name's extension does not)."""

    name: str
    data: bytes
    media_type: str | None = None

    def typed_name(self) -> str:
        """The name with the extension of its media type added when it has no known one."""
        suffix = Path(self.name.replace("\\", "/")).suffix.lower()
        media = (self.media_type or "").split(";")[0].strip().lower()
        if suffix not in UPLOAD_EXTENSIONS and media in MEDIA_TYPES:
            return (self.name or "upload") + MEDIA_TYPES[media]
        return self.name


@dataclass(slots=True)
class NewDocument:
    """A document given as data (the JSON form of ``POST /documents``).

    A missing ``id`` is derived from the title and text; metadata the caller leaves out is
    extracted from the text where it says so (发文机关, 发文字号, date, type).
    """

    text: str
    title: str = ""
    id: str | None = None
    issuer: str | None = None
    doc_number: str | None = None
    date: str | None = None
    doc_type: str | None = None
    region: str | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_document(self) -> Document:
        text = self.text.replace("\r\n", "\n").replace("\r", "\n")
        title = self.title.strip() or extract_title(text, max_chars=60) or text.strip()[:30]
        doc_id = self.id or stable_id("api", title, text)
        problem = doc_id_problem(doc_id)
        if problem:
            raise ValueError(problem)
        meta = DocMeta(
            issuer=self.issuer,
            doc_number=self.doc_number,
            date=self.date,
            doc_type=self.doc_type,
            region=self.region,
            source=self.source or "api",
            extra=dict(self.extra),
        )
        fill_missing(meta, text, title)
        return Document(id=doc_id, title=title, text=text, meta=meta)


@dataclass(slots=True)
class FileStatus:
    """What happened to one uploaded file (or one JSON document).

    ``status`` is ``indexed`` (``documents`` lists what it gave) or ``rejected`` (``reason`` says
    why; nothing of it was indexed). ``warnings`` holds problems that did not stop it, such as
    skipped jsonl lines.
    """

    name: str
    status: str
    reason: str | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".tif": (b"II*\x00", b"MM\x00*"),
    ".tiff": (b"II*\x00", b"MM\x00*"),
    ".bmp": (b"BM",),
}
_UNSAFE = re.compile(r"[^\w.\-()\[\]（）【】《》〔〕 ]+")


def safe_filename(name: str) -> str:
    """A file name that is safe to create in a directory of our own.

    Only the last path component of what the client sent is kept (``/`` and ``\\`` both count as
    separators); control characters and anything outside letters, digits, CJK and a few
    punctuation marks become ``_``; leading dots are dropped (no hidden files, no ``..``); the
    stem is shortened so the name stays within :data:`_MAX_FILENAME_CHARS` characters and
    :data:`_MAX_FILENAME_BYTES` UTF-8 bytes, the extension kept. Never empty.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").split("/")[-1]
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""

    def clean(part: str) -> str:
        part = "".join(ch if unicodedata.category(ch)[0] != "C" else "_" for ch in part)
        return _UNSAFE.sub("_", part).strip(" ._")

    ext = clean(ext)[:10]
    stem = clean(stem)
    room = _MAX_FILENAME_CHARS - len(ext) - 1
    while stem and (len(stem) > room or len(stem.encode("utf-8")) + len(ext) + 1 > _MAX_FILENAME_BYTES):
        stem = stem[:-1]
    stem = stem.rstrip(" ._") or "upload"
    return f"{stem}.{ext}" if ext else stem


def check_upload(name: str, data: bytes) -> str | None:
    """Why an uploaded file cannot be indexed (type and content checks), or None."""
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_EXTENSIONS:
        shown = suffix or "(none)"
        return f"{UNSUPPORTED_TYPE} {shown}; accepted: {', '.join(UPLOAD_EXTENSIONS)}"
    if not data.strip():
        return "the file is empty"
    if suffix == ".pdf":
        if data.lstrip()[:5] != b"%PDF-":
            return "not a PDF file (no %PDF- header)"
    elif suffix == ".docx":
        if data[:4] != b"PK\x03\x04":
            return "not a .docx file (not a zip archive)"
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                if "word/document.xml" not in zf.namelist():
                    return "not a .docx file (no word/document.xml in the archive)"
        except zipfile.BadZipFile as exc:
            return f"not a .docx file ({exc})"
        # the loader inflates it as a stream with hard limits before parsing (corpus.archive)
    elif suffix in _IMAGE_MAGIC:
        if not data.startswith(_IMAGE_MAGIC[suffix]):
            return f"not a {suffix} image (its first bytes are not an image header of that type)"
    elif suffix == ".ofd":
        if data[:4] != b"PK\x03\x04":
            return "not an .ofd file (not a zip archive)"
        # the loader inflates it as a stream with hard limits before parsing (corpus.archive)
    elif suffix in LEGACY_WORD_EXTENSIONS:
        if not data.startswith((OLE_MAGIC, b"PK\x03\x04")):
            return f"not a {suffix} file (no Word 97–2003 / WPS header)"
    elif b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f"not a text file (binary content in a {suffix} file)"
    return None


def read_uploads(
    files: Sequence[UploadedFile], *, ocr: OcrReader | None = None, originals: OriginalStore | None = None
) -> tuple[list[FileStatus], list[list[Document]]]:
    """Each file's status and the documents it gave (none when rejected), in the given order.
    ``ocr`` reads scanned PDF pages and images (without it they are refused with the reason);
    ``originals`` keeps each file read, for citations to open."""
    statuses: list[FileStatus] = []
    per_file: list[list[Document]] = []
    with tempfile.TemporaryDirectory(prefix="policyqa-upload-") as tmp:
        for n, upload in enumerate(files):
            name = safe_filename(upload.typed_name())
            status = FileStatus(name=name, status="indexed")
            statuses.append(status)
            docs: list[Document] = []
            per_file.append(docs)
            problem = check_upload(name, upload.data)
            if problem:
                status.status, status.reason = "rejected", problem
                continue
            folder = Path(tmp) / str(n)
            folder.mkdir()
            path = folder / name
            try:
                path.write_bytes(upload.data)
            except OSError as exc:
                status.status, status.reason = "rejected", f"cannot store the file: {exc.strerror}"
                continue
            loaded, errors = _load_upload(path, ocr, originals)
            if not loaded:
                status.status = "rejected"
                status.reason = "; ".join(errors) or "no text found in the file"
                continue
            status.warnings.extend(errors)
            status.warnings.extend(line for d in loaded for line in reading_warnings(d))
            docs.extend(_own_upload(d, path, name, ordinal) for ordinal, d in enumerate(loaded))
    return statuses, per_file


def _load_upload(
    path: Path, ocr: OcrReader | None, originals: OriginalStore | None
) -> tuple[list[Document], list[str]]:
    """The documents of one uploaded file and the problems met (skipped jsonl lines …)."""
    errors: list[str] = []

    def named(reason: str) -> str:  # the client sees its file's name, never the server path
        return reason.replace(str(path.parent), "").replace(str(path), path.name)

    try:
        docs = list(
            load_path(
                path,
                on_error=lambda _path, reason: errors.append(named(reason)),
                ocr=ocr,
                originals=originals,
            )
        )
    except Exception as exc:  # a loader failing on odd input rejects this file only
        logger.warning("upload %s could not be read: %s", path.name, exc)
        return [], [named(f"cannot read the file: {exc}")]
    return docs, errors


def _own_upload(doc: Document, path: Path, name: str, ordinal: int) -> Document:
    """Give a document loaded from a temporary upload path an id and source of the upload's
    name, so that uploading the same file again replaces it and no server path leaks out.
    Ids a jsonl record carries itself are kept."""
    key = path.resolve().as_posix()
    path_ids = {stable_id(key, "0"), stable_id(key, str(ordinal))}
    line = doc.meta.extra.get("line")
    if isinstance(line, int):
        path_ids.add(stable_id(key, str(line - 1)))
    if doc.id in path_ids:
        doc.id = stable_id("upload", name, str(line - 1 if isinstance(line, int) else ordinal))
    if doc.meta.source in (str(path), key):
        doc.meta.source = name
    if doc.title == path.stem:
        doc.title = Path(name).stem
    return doc
