"""From the lines of a paged source's pages to a document's text, knowing where each page starts.

A PDF (text layer or OCR), an image, or an OFD file gives its pages as lines in reading order,
some of them table rows (:class:`PageLine`). :func:`assemble_pages` turns them into the text that
is indexed and cited:

1. page furniture is dropped (:func:`policyqa.corpus.furniture.strip_furniture`: page numbers,
   running headers and footers);
2. the 版头 at the start and the 版记 at the end become :class:`~policyqa.corpus.furniture.OfficialParts`
   (metadata), not text;
3. the text lines are joined into paragraphs across lines and pages (:func:`join_pdf_lines`:
   a line broken inside a sentence joins the next one; a word hyphenated at a line end is
   joined without its hyphen); a table row stays a line of its own;
4. ``page_starts[i]`` is the offset in the text where page ``i + 1`` begins, found while the
   text is built (a page that begins inside a paragraph begins at its first character there; a
   page without text begins where the next one does, so :func:`page_at` never answers it).

:func:`page_at` turns an offset (a chunk's or an answer's start) into its 1-based page number.
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .furniture import OfficialParts, split_official_parts, strip_furniture
from .layout import Box, line_text, reading_order

__all__ = [
    "Assembled",
    "PageLine",
    "assemble_pages",
    "join_pdf_lines",
    "page_at",
    "page_label",
    "page_of",
    "page_starts_of",
    "placed_lines",
]

_SPACE = " \t\u3000\xa0"
_LINE_END = re.compile(r"[。！？；：!?;:][”’」』）)】》\"']*$")
_STRUCT_START = re.compile(
    r"^(?:第[一二三四五六七八九十百千零〇\d]+[编章节条]|[一二三四五六七八九十]{1,3}[、．.]|[（(][一二三四五六七八九十\d]{1,3}[）)]"
    r"|\d{1,2}[、．.](?!\d)|[①-⑳]|#)"
)
_ASCII_END = re.compile(r"[A-Za-z0-9,]$")
_ASCII_START = re.compile(r"^[A-Za-z0-9(]")
_HYPHENATED = re.compile(r"[A-Za-z]-$")
_LOWER_START = re.compile(r"^[a-z]")


@dataclass(frozen=True, slots=True)
class PageLine:
    """A line of a page in reading order. ``row``: a table row (never joined to a neighbour).
    Where the line's place on the page is known: ``indented`` (it starts right of the text's
    left edge: a paragraph begins) and ``short`` (it ends well before the right edge: a
    paragraph, title or heading ends)."""

    text: str
    row: bool = False
    indented: bool = False
    short: bool = False


def placed_lines(boxes: Sequence[Box]) -> list[tuple[float, PageLine]]:
    """The lines of positioned ``boxes`` in reading order (:func:`~policyqa.corpus.layout.reading_order`),
    each with its top and whether it is indented or short against the left and right edges of
    the page's text. The unit is the page's median character width: a line more than 1.2
    characters in is ``indented``; one ending more than 2.5 characters before the right edge, or
    centred (more than 2.5 in on the left and not reaching the right edge), is ``short``."""
    lines = [line for line in reading_order(boxes) if line_text(line)]
    if not lines:
        return []
    lefts = sorted(min(b.x0 for b in line) for line in lines)
    rights = sorted(max(b.x1 for b in line) for line in lines)
    left = lefts[len(lefts) // 10]
    right = rights[len(rights) * 9 // 10]
    char = statistics.median((b.x1 - b.x0) / len(b.text) for line in lines for b in line if b.text.strip())
    out: list[tuple[float, PageLine]] = []
    for line in lines:
        left_gap = (min(b.x0 for b in line) - left) / char
        right_gap = (right - max(b.x1 for b in line)) / char
        page_line = PageLine(
            line_text(line),
            indented=left_gap > 1.2,
            short=right_gap > 2.5 or (left_gap > 2.5 and right_gap > 0.5),
        )
        out.append((min(b.top for b in line), page_line))
    return out


def _join(
    lines: Sequence[str], keep: Sequence[bool], breaks: Sequence[tuple[bool, bool]] | None = None
) -> tuple[list[str], list[tuple[int, int]]]:
    """Paragraphs of ``lines`` and, for each line, ``(paragraph, offset in it)`` (``(-1, -1)`` for
    an empty line). ``keep[i]``: line ``i`` is a paragraph of its own (a table row);
    ``breaks[i]``: ``(indented, short)`` of :class:`PageLine`."""
    lengths = sorted(len(s) for s, k in zip(lines, keep, strict=True) if s and not k)
    full = lengths[int(len(lengths) * 0.8)] if lengths else 0
    paragraphs: list[str] = []
    where: list[tuple[int, int]] = []
    current = ""
    for i, line in enumerate(lines):
        if not line:
            where.append((-1, -1))
            if current:
                paragraphs.append(current)
                current = ""
            continue
        if keep[i]:
            if current:
                paragraphs.append(current)
                current = ""
            where.append((len(paragraphs), 0))
            paragraphs.append(line)
            continue
        if current and _HYPHENATED.search(current) and _LOWER_START.match(line):
            current = current[:-1]
        elif current and _ASCII_END.search(current) and _ASCII_START.match(line):
            current += " "
        where.append((len(paragraphs), len(current)))
        current += line
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        ends_paragraph = (
            not nxt
            or (i + 1 < len(lines) and keep[i + 1])
            or bool(_LINE_END.search(line))
            or len(line) < 0.75 * full
            or bool(_STRUCT_START.match(nxt))
            or (breaks is not None and (breaks[i][1] or (i + 1 < len(lines) and breaks[i + 1][0])))
        )
        if ends_paragraph:
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs, where


def join_pdf_lines(lines: list[str]) -> list[str]:
    """Paragraphs from the lines of page text.

    A line is joined to the next one unless it ends with sentence punctuation (``。！？；：`` …),
    is clearly shorter than a full line (a title, a heading or the last line of a paragraph), or
    the next line starts a structural item (``第X条``, ``一、``, ``（一）``, ``1.`` …).
    Page-number lines (``- 3 -``, ``第3页``, ``3/10``) are dropped. Chinese lines are joined
    without a space, Latin ones with one; a word hyphenated at a line end loses its hyphen.
    """
    cleaned = [s.strip(_SPACE) for s in strip_furniture([list(lines)])[0]]
    return _join(cleaned, [False] * len(cleaned))[0]


@dataclass(slots=True)
class Assembled:
    """A paged source's text, where each page starts in it, and its 版头/版记."""

    text: str
    page_starts: list[int]
    parts: OfficialParts = field(default_factory=OfficialParts)

    def meta_extra(self) -> dict[str, Any]:
        """``pages`` and ``page_starts`` for ``meta.extra``."""
        return {"pages": len(self.page_starts), "page_starts": list(self.page_starts)}


def assemble_pages(pages: Sequence[Sequence[PageLine]], *, official: bool = True) -> Assembled:
    """The text of ``pages`` (see the module doc); ``official``: take the 版头 and 版记 off."""
    texts = strip_furniture([[ln.text.strip(_SPACE) for ln in page if not ln.row] for page in pages])
    lines: list[str] = []
    keep: list[bool] = []
    breaks: list[tuple[bool, bool]] = []
    page_of_line: list[int] = []
    for number, (page, text_lines) in enumerate(zip(pages, texts, strict=True)):
        remaining = iter(text_lines)
        wanted = next(remaining, None)
        for ln in page:
            if ln.row or (wanted is not None and ln.text.strip(_SPACE) == wanted):
                lines.append(ln.text.strip(_SPACE))
                keep.append(ln.row)
                breaks.append((ln.indented, ln.short))
                page_of_line.append(number)
                if not ln.row:
                    wanted = next(remaining, None)
        # a blank line between pages would end a paragraph: pages run on into each other
    parts = OfficialParts()
    if official:
        parts = split_official_parts(lines)
        end = len(lines) - parts.tail
        lines, keep, breaks = lines[parts.head : end], keep[parts.head : end], breaks[parts.head : end]
        page_of_line = page_of_line[parts.head : end]
    paragraphs, where = _join(lines, keep, breaks)
    para_starts: list[int] = []
    pos = 0
    for paragraph in paragraphs:
        para_starts.append(pos)
        pos += len(paragraph) + 1
    first_on_page: dict[int, int] = {}
    for (k, off), page_number in zip(where, page_of_line, strict=True):
        if k >= 0 and page_number not in first_on_page:
            first_on_page[page_number] = para_starts[k] + off
    text = "\n".join(paragraphs)
    starts = [0] * len(pages)
    following = len(text)  # a page without text starts where the next one does
    for number in range(len(pages) - 1, -1, -1):
        following = first_on_page.get(number, following)
        starts[number] = following
    if starts:
        starts[0] = 0
    return Assembled(text=text, page_starts=starts, parts=parts)


def page_starts_of(extra: dict[str, Any]) -> list[int] | None:
    """``meta.extra["page_starts"]`` when it is a list of offsets, else None."""
    starts = extra.get("page_starts")
    if isinstance(starts, list) and starts and all(isinstance(s, int) for s in starts):
        return starts
    return None


def page_at(page_starts: Sequence[int], offset: int) -> int:
    """The 1-based page that the character at ``offset`` is on."""
    return max(1, bisect.bisect_right(page_starts, offset))


def page_of(extra: dict[str, Any], offset: int) -> int | None:
    """The page of ``offset`` in a document whose ``meta.extra`` is ``extra`` (None: not paged)."""
    starts = page_starts_of(extra)
    return page_at(starts, offset) if starts is not None else None


def page_label(page: int | None) -> str:
    """How a page is shown next to a citation: ``第 3 页`` (empty when unknown)."""
    return f"第 {page} 页" if page is not None else ""
