"""OFD files (GB/T 33190, the Chinese fixed-layout format many offices publish in) as documents.

The container is a zip: it is inflated as a stream with the same hard limits as a ``.docx``
first (:func:`policyqa.corpus.archive.zip_bomb_reason`), and one with an encryption entry is
refused. ``ofdkit`` (stdlib only) then reads each page's text objects with their places (page
templates and composite objects included); they go through the same steps as a PDF page's
words: reading order (:func:`policyqa.corpus.layout.reading_order`), page numbers and running
headers and footers dropped, 版头/版记 into metadata, lines joined into paragraphs
(:func:`policyqa.corpus.pages.assemble_pages`), ``page_starts`` in ``meta.extra``.

The metadata the file carries (``DocInfo``) is kept: ``Title`` is the document's title, and
``Author``, ``CreationDate``, ``Subject`` and ``Keywords`` go to ``meta.extra`` (``author``,
``created``, ``subject``, ``keywords``). A page of images only (a scan saved as OFD) has no text
to read here: such pages are listed in ``meta.extra["pages_without_text"]``.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

from .archive import zip_bomb_reason
from .build import finish_document, require_text, source_key
from .encoding import UnreadableFileError
from .layout import Box
from .metadata import extract_title
from .models import DocMeta, Document, stable_id
from .pages import PageLine, assemble_pages, placed_lines

__all__ = ["load_ofd"]

logger = logging.getLogger(__name__)


def _runs_to_lines(runs: list[Any]) -> list[PageLine]:
    boxes = [
        Box(str(r.text), float(r.x), float(r.y) - float(r.size), float(r.x) + float(r.width), float(r.y))
        for r in runs
        if str(r.text).strip()
    ]
    return [line for _top, line in placed_lines(boxes)]


def load_ofd(path: str | Path) -> Document:
    """An OFD file as one document: text in reading order, pages, DocInfo metadata."""
    import ofdkit

    p = Path(path)
    bomb = zip_bomb_reason(p)
    if bomb:
        raise UnreadableFileError(p, f"not indexed: {bomb}")
    with zipfile.ZipFile(p) as zf:
        if any(Path(name).name.lower() == "encryptions.xml" for name in zf.namelist()):
            raise UnreadableFileError(p, "encrypted: the OFD file's content is encrypted")
    try:
        with ofdkit.open(str(p)) as ofd:
            info = ofd.info
            pages = [_runs_to_lines(list(page.runs)) for page in ofd.pages]
    except ofdkit.OFDError as exc:
        raise UnreadableFileError(p, f"not a readable OFD file ({exc})") from exc
    assembled = assemble_pages(pages)
    empty = [i + 1 for i, lines in enumerate(pages) if not lines]
    require_text(p, assembled.text, "no text in the OFD file (its pages hold images only: a scan)")
    extra: dict[str, Any] = assembled.meta_extra()
    if empty:
        extra["pages_without_text"] = empty
    for key, value in (
        ("author", info.author),
        ("created", info.creation_date),
        ("subject", info.subject),
        ("keywords", list(info.keywords) if info.keywords else None),
    ):
        if value:
            extra[key] = value
    meta = DocMeta(source=str(p), extra=extra)
    assembled.parts.apply(meta)
    title = (info.title or "").strip() or extract_title(assembled.text) or p.stem
    return finish_document(stable_id(source_key(p), "0"), title, assembled.text, meta)
