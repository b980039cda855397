"""PDF files and page images (scans, photos) as documents: text layer, tables, OCR, pages.

:func:`load_pdf` reads a PDF page by page:

- a page with a usable **text layer** (pdfplumber) keeps it: its words are put in reading order
  (:func:`policyqa.corpus.layout.reading_order`: columns, then lines), and the **tables**
  pdfplumber finds by their ruling lines become rows with their headers
  (:mod:`policyqa.corpus.tables`) in their place on the page, their cells no longer read as loose
  text; a layer counts as usable with at least :data:`MIN_PAGE_CHARS` visible characters, less
  than :data:`MAX_GARBLED_SHARE` of them unmapped glyphs (``(cid:N)``, private-use code points);
- a page without one (a scan, or a scanned page in a mixed PDF) is rendered by pypdfium2 and read
  by OCR (:class:`policyqa.corpus.ocr.OcrReader`) when a reader is given; without one, such pages
  are left out (listed in ``meta.extra["pages_without_text"]``) and a PDF of nothing else is
  refused with that reason.

:func:`load_image` reads a ``.png``/``.jpg``/``.tif``/``.bmp`` file (every frame of a multi-page
TIFF is a page) by OCR.

The pages' lines then become the text (:func:`policyqa.corpus.pages.assemble_pages`): page
numbers, running headers and footers dropped, the 版头 and 版记 taken into metadata, lines joined
into paragraphs; ``meta.extra`` holds ``pages``, ``page_starts`` (where each page begins in the
text), ``tables`` (how many), and for OCR ``ocr_pages``, ``ocr_confidence`` and
``low_confidence_pages`` (1-based page numbers).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .build import finish_document, require_text, source_key
from .encoding import UnreadableFileError
from .furniture import is_page_number
from .layout import Box
from .metadata import extract_title
from .models import DocMeta, Document, stable_id
from .pages import Assembled, PageLine, assemble_pages, placed_lines
from .tables import pdf_grid, table_lines

if TYPE_CHECKING:
    from pdfplumber.page import Page
    from PIL.Image import Image

    from .ocr import OcrReader

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_GARBLED_SHARE",
    "MIN_PAGE_CHARS",
    "load_image",
    "load_pdf",
    "reading_warnings",
]

logger = logging.getLogger(__name__)

#: Image files read by OCR.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Fewer visible characters on a page (page numbers aside): it has no usable text layer.
MIN_PAGE_CHARS = 8
#: A larger share of unmapped glyphs: the text layer is garbled (subset fonts without a map).
MAX_GARBLED_SHARE = 0.3

_GARBLED = re.compile(r"\(cid:\d+\)|[\ue000-\uf8ff\ufffd]")
_OCR_OFF = "OCR is off (set POLICYQA_OCR=true to read scans)"


def _usable(lines: list[str]) -> bool:
    text = "".join(s for s in lines if not is_page_number(s))
    visible = len(re.sub(r"\s+", "", text))
    if visible < MIN_PAGE_CHARS:
        return False
    garbled = sum(len(m.group()) for m in _GARBLED.finditer(text))
    return garbled <= MAX_GARBLED_SHARE * visible


def _inside(obj: dict[str, Any], boxes: list[tuple[float, float, float, float]]) -> bool:
    x = (float(obj["x0"]) + float(obj["x1"])) / 2
    y = (float(obj["top"]) + float(obj["bottom"])) / 2
    return any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)


def _text_page(page: Page) -> tuple[list[PageLine], int]:
    """A text-layer page's lines in reading order with its tables' rows in their place."""
    # a frame around the page or a boxed paragraph is no table: two rows and two columns at least
    tables = [t for t in page.find_tables() if len(t.rows) >= 2 and max(len(r.cells) for r in t.rows) >= 2]
    table_boxes = [tuple(float(v) for v in t.bbox) for t in tables]
    outside = page.filter(lambda obj: not _inside(obj, table_boxes)) if tables else page  # type: ignore[arg-type]
    words = outside.extract_words(x_tolerance=3, y_tolerance=3, keep_blank_chars=False)
    boxes = [
        Box(str(w["text"]), float(w["x0"]), float(w["top"]), float(w["x1"]), float(w["bottom"]))
        for w in words
    ]
    placed = placed_lines(boxes)
    lines: list[PageLine] = []
    pending = sorted(
        ((float(t.bbox[1]), [PageLine(r, row=True) for r in table_lines(pdf_grid(page, t))]) for t in tables),
        key=lambda item: item[0],
    )
    for top, page_line in placed:
        while pending and pending[0][0] <= top:
            lines.extend(pending.pop(0)[1])
        lines.append(page_line)
    for _top, group in pending:
        lines.extend(group)
    return lines, len(tables)


def _read_text_layer(path: Path) -> tuple[list[list[PageLine] | None], str, int]:
    """Each page's lines (None: no usable text layer), the PDF's title and its table count."""
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfminer.psexceptions import PSException
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        with pdfplumber.open(str(path)) as pdf:
            info = pdf.metadata or {}
            title = info.get("Title")
            pdf_title = title.strip() if isinstance(title, str) else ""
            pages: list[list[PageLine] | None] = []
            tables = 0
            for page in pdf.pages:
                lines, n_tables = _text_page(page)
                if _usable([ln.text for ln in lines]):
                    pages.append(lines)
                    tables += n_tables
                else:
                    pages.append(None)
                page.close()
    except PdfminerException as exc:
        cause = exc.args[0] if exc.args else exc
        if isinstance(cause, PDFPasswordIncorrect | PDFEncryptionError):
            raise UnreadableFileError(path, "encrypted: the PDF needs a password to open") from exc
        if isinstance(cause, PDFSyntaxError | PSException):
            raise UnreadableFileError(path, f"not a readable PDF (corrupt: {cause})") from exc
        raise UnreadableFileError(path, f"not a readable PDF ({type(cause).__name__}: {cause})") from exc
    return pages, pdf_title, tables


def _render(path: Path, numbers: list[int], dpi: int) -> Iterator[Image]:
    """The pages ``numbers`` (0-based) of a PDF as grey images at ``dpi``."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        for i in numbers:
            page = doc[i]
            try:
                yield page.render(scale=dpi / 72, grayscale=True).to_pil()
            finally:
                page.close()
    finally:
        doc.close()


def _ocr_pages(
    ocr: OcrReader, numbers: list[int], images: Iterator[Image], desc: str
) -> tuple[dict[int, list[PageLine]], dict[str, Any]]:
    """The OCR'd pages' lines by page index and what ``meta.extra`` says about them."""
    read: dict[int, list[PageLine]] = {}
    confidences: list[float] = []
    low: list[int] = []
    for i, page in zip(numbers, ocr.read_all(images, total=len(numbers), desc=desc), strict=True):
        read[i] = list(page.lines)
        confidences.append(page.confidence)
        if page.low_confidence:
            low.append(i + 1)
            logger.warning(
                "%s: page %d was read by OCR with low confidence (%.2f)", desc, i + 1, page.confidence
            )
    extra: dict[str, Any] = {
        "ocr_pages": [i + 1 for i in numbers],
        "ocr_confidence": round(sum(confidences) / len(confidences), 4) if confidences else None,
        "low_confidence_pages": low,
    }
    return read, extra


def _document(path: Path, assembled: Assembled, extra: dict[str, Any], title: str, empty: str) -> Document:
    require_text(path, assembled.text, empty)
    meta = DocMeta(source=str(path), extra={**assembled.meta_extra(), **extra})
    assembled.parts.apply(meta)
    if title.lower().startswith(("microsoft word", "untitled")) or title == path.stem:
        title = ""
    title = title or extract_title(assembled.text) or path.stem
    return finish_document(stable_id(source_key(path), "0"), title, assembled.text, meta)


def load_pdf(path: str | Path, *, ocr: OcrReader | None = None) -> Document:
    """A PDF as one document: text layer where there is one, OCR (with ``ocr``) elsewhere."""
    p = Path(path)
    pages, pdf_title, tables = _read_text_layer(p)
    missing = [i for i, lines in enumerate(pages) if lines is None]
    extra: dict[str, Any] = {"tables": tables} if tables else {}
    if missing and ocr is not None:
        read, ocr_extra = _ocr_pages(ocr, missing, _render(p, missing, ocr.dpi), p.name)
        for i, lines in read.items():
            pages[i] = lines
        extra.update(ocr_extra)
    elif missing:
        extra["pages_without_text"] = [i + 1 for i in missing]
        extra["ocr_off"] = True
    assembled = assemble_pages([lines or [] for lines in pages])
    if ocr is not None:
        empty = "no extractable text, not even by OCR"
    else:
        empty = f"no extractable text: {len(missing)} page(s) without a text layer (a scan) and {_OCR_OFF}"
    return _document(p, assembled, extra, pdf_title, empty)


def _frames(path: Path) -> list[Image]:
    from PIL import Image as PilImage
    from PIL import ImageSequence, UnidentifiedImageError

    try:
        with PilImage.open(path) as img:
            frames = [frame.convert("L") for frame in ImageSequence.Iterator(img)]
    except PilImage.DecompressionBombError as exc:
        raise UnreadableFileError(path, f"not indexed: the image is too large ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableFileError(
            path, "not a readable image (corrupt, or not an image of its type)"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UnreadableFileError(path, f"not a readable image (corrupt: {type(exc).__name__})") from exc
    return frames


def load_image(path: str | Path, *, ocr: OcrReader | None = None) -> Document:
    """An image file (every frame a page) read by OCR as one document."""
    p = Path(path)
    frames = _frames(p)
    if ocr is None:
        raise UnreadableFileError(p, f"an image: its text needs OCR and {_OCR_OFF}")
    numbers = list(range(len(frames)))
    read, extra = _ocr_pages(ocr, numbers, iter(frames), p.name)
    assembled = assemble_pages([read[i] for i in numbers])
    return _document(p, assembled, extra, "", "no text found by OCR")


def _pages_list(value: object) -> str:
    pages = [str(v) for v in value] if isinstance(value, list) else []
    return ", ".join(pages)


def reading_warnings(doc: Document) -> list[str]:
    """What a loaded document's reading left in doubt, one line each: pages OCR read with low
    confidence, pages left out for want of a text layer (OCR off)."""
    out: list[str] = []
    low = _pages_list(doc.meta.extra.get("low_confidence_pages"))
    if low:
        out.append(
            f"OCR read page(s) {low} with low confidence (mean {doc.meta.extra.get('ocr_confidence')})"
        )
    missing = _pages_list(doc.meta.extra.get("pages_without_text"))
    if missing:
        why = f": {_OCR_OFF}" if doc.meta.extra.get("ocr_off") else " (images only)"
        out.append(f"page(s) {missing} hold no text and were left out{why}")
    return out
