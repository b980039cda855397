"""Small PDFs the corpus tests write themselves: text at given places, ruling lines, image pages.

Text uses a Type0 font whose glyph ids are the characters' code points with a ToUnicode map (no
font file embedded), so any CJK text has a text layer; every glyph is ``size`` wide.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAGE_W, PAGE_H = 595, 842


@dataclass
class Page:
    """What one page holds: ``texts`` as ``(x, top, text, size)`` (top-down coordinates) and
    ``rules`` as ``(x0, top, x1, bottom)`` stroked lines."""

    texts: list[tuple[float, float, str, float]] = field(default_factory=list)
    rules: list[tuple[float, float, float, float]] = field(default_factory=list)


def lines_page(lines: Sequence[str], *, size: float = 12, left: float = 50, top: float = 60) -> Page:
    """A page of ``lines`` one under the other (a line starting with full-width spaces is indented)."""
    page = Page()
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip("\u3000"))
        page.texts.append((left + indent * size, top + i * size * 1.6, line.lstrip("\u3000"), size))
    return page


def grid_rules(
    xs: Sequence[float], ys: Sequence[float], skip: Sequence[tuple[float, float, float, float]] = ()
) -> list[tuple[float, float, float, float]]:
    """The ruling lines of a table with column edges ``xs`` and row edges ``ys``, minus the
    segments in ``skip`` (where cells are merged)."""
    rules: list[tuple[float, float, float, float]] = []
    for y in ys:
        for a, b in zip(xs, xs[1:], strict=False):
            if (a, y, b, y) not in skip:
                rules.append((a, y, b, y))
    for x in xs:
        for a, b in zip(ys, ys[1:], strict=False):
            if (x, a, x, b) not in skip:
                rules.append((x, a, x, b))
    return rules


def write_pdf(path: Path, pages: Sequence[Page], *, title: str | None = None) -> None:
    chars = sorted({ord(c) for page in pages for _x, _y, text, _s in page.texts for c in text} or {0x20})
    ranges = "\n".join(f"<{c:04x}> <{c:04x}> <{c:04x}>" for c in chars)
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        "1 begincodespacerange <0000> <ffff> endcodespacerange\n"
        f"{len(chars)} beginbfrange\n{ranges}\nendbfrange\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end\n"
    ).encode()
    objects: list[bytes] = []

    def add(obj: bytes) -> int:
        objects.append(obj)
        return len(objects)

    to_unicode = add(b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream")
    descendant = add(
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Song /CIDSystemInfo << /Registry (Adobe) "
        b"/Ordering (Identity) /Supplement 0 >> /DW 1000 /CIDToGIDMap /Identity >>"
    )
    font = add(
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Song /Encoding /Identity-H "
        b"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>" % (descendant, to_unicode)
    )
    pages_id = len(objects) + 2 * len(pages) + 1
    page_ids = []
    for page in pages:
        ops = ["0.5 w"]
        for x0, top, x1, bottom in page.rules:
            ops.append(f"{x0} {PAGE_H - top} m {x1} {PAGE_H - bottom} l S")
        for x, top, text, size in page.texts:
            hexed = "".join(f"{ord(c):04x}" for c in text)
            ops.append(f"BT /F1 {size} Tf {x} {PAGE_H - top - size * 0.88} Td <{hexed}> Tj ET")
        content = "\n".join(ops).encode()
        c_id = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_id, PAGE_W, PAGE_H, c_id, font)
            )
        )
    add(
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % p for p in page_ids)
        + b"] /Count %d >>" % len(pages)
    )
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    info = (
        add(b"<< /Title <" + ("\ufeff" + title).encode("utf-16-be").hex().encode() + b"> >>")
        if title
        else None
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    trailer = b"trailer\n<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out.write(trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    path.write_bytes(out.getvalue())


def merge_pdfs(path: Path, parts: Sequence[Path]) -> None:
    """One PDF of the pages of ``parts`` in order (a mixed text and scanned document)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in parts:
        for page in PdfReader(str(part)).pages:
            writer.add_page(page)
    with path.open("wb") as f:
        writer.write(f)
