"""Reading order of positioned text: columns first, then lines, then left to right.

Both kinds of page give boxes of text with their position: the words of a PDF text layer
(pdfplumber) and the lines an OCR engine reads off a page image. :func:`reading_order` puts them
in the order a person reads them, by recursive XY-cut:

- a **column gutter** is a vertical strip no box crosses, with at least two boxes on each side,
  whose boxes are text lines rather than table cells (each side's median box is at least a fifth
  of the region wide); a region is cut at its widest gutter when that gutter is at least as wide
  as the widest horizontal gap, and each side is read in turn, left column first;
- otherwise the region is cut at its widest horizontal gap (a title above two columns is read
  before them), down to single bands;
- a band's boxes are grouped into **lines** by vertical overlap and each line is read left to
  right; :func:`line_text` joins its pieces with nothing between CJK text and one space where a
  Latin word or number meets another or the gap is wider than half a character.

Coordinates are top-down (``top < bottom``), in any unit.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Box", "line_text", "reading_order"]

_LATIN_END = re.compile(r"[A-Za-z0-9%,.;:!?)]$")
_LATIN_START = re.compile(r"^[A-Za-z0-9(]")


@dataclass(frozen=True, slots=True)
class Box:
    """A piece of text and where it is on the page (top-down coordinates)."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    score: float = 1.0

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1e-6)


def _gaps(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The empty intervals between the union of ``spans`` (start, end), as ``(gap, at)``."""
    spans = sorted(spans)
    out: list[tuple[float, float]] = []
    reach = spans[0][1]
    for a, b in spans[1:]:
        if a > reach:
            out.append((a - reach, (a + reach) / 2))
        reach = max(reach, b)
    return out


def _column_cut(boxes: Sequence[Box]) -> tuple[float, float] | None:
    """``(gap, x)`` of the widest valid column gutter of ``boxes``, or None."""
    left_edge = min(b.x0 for b in boxes)
    width = max(b.x1 for b in boxes) - left_edge
    min_gap = 0.5 * statistics.median(b.height for b in boxes)
    for gap, at in sorted(_gaps([(b.x0, b.x1) for b in boxes]), reverse=True):
        if gap < min_gap:
            break
        left = [b for b in boxes if b.x1 <= at]
        right = [b for b in boxes if b.x0 >= at]
        if len(left) < 2 or len(right) < 2:
            continue
        if min(statistics.median(b.x1 - b.x0 for b in side) for side in (left, right)) < 0.2 * width:
            continue  # narrow boxes on a side: table cells, not a column of text
        return gap, at
    return None


def _row_cut(boxes: Sequence[Box]) -> tuple[float, float] | None:
    gaps = _gaps([(b.top, b.bottom) for b in boxes])
    return max(gaps) if gaps else None


def _lines(boxes: Sequence[Box]) -> list[list[Box]]:
    """Boxes grouped into lines by vertical overlap, top to bottom, each left to right."""
    lines: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: (b.top + b.bottom) / 2):
        if lines:
            last = lines[-1]
            top = min(b.top for b in last)
            bottom = max(b.bottom for b in last)
            overlap = min(bottom, box.bottom) - max(top, box.top)
            if overlap > 0.5 * min(box.height, bottom - top):
                last.append(box)
                continue
        lines.append([box])
    return [sorted(line, key=lambda b: b.x0) for line in lines]


def _order(boxes: Sequence[Box], out: list[list[Box]]) -> None:
    if len(boxes) <= 1:
        out.extend(_lines(boxes))
        return
    column = _column_cut(boxes)
    row = _row_cut(boxes)
    if column is not None and (row is None or column[0] >= row[0]):
        at = column[1]
        _order([b for b in boxes if b.x1 <= at], out)
        _order([b for b in boxes if b.x1 > at], out)
        return
    if row is not None:
        at = row[1]
        _order([b for b in boxes if b.bottom <= at], out)
        _order([b for b in boxes if b.bottom > at], out)
        return
    out.extend(_lines(boxes))


def reading_order(boxes: Sequence[Box]) -> list[list[Box]]:
    """The lines of ``boxes`` in reading order (see the module doc), each a left-to-right list."""
    out: list[list[Box]] = []
    if boxes:
        _order(list(boxes), out)
    return out


def line_text(line: Sequence[Box]) -> str:
    """The text of one line of boxes (see the module doc for the spaces put between them)."""
    text = ""
    prev: Box | None = None
    for box in line:
        piece = box.text.strip()
        if not piece:
            continue
        if prev is not None and text:
            gap = box.x0 - prev.x1
            char = min(box.height, prev.height)
            latin = bool(_LATIN_END.search(text)) and bool(_LATIN_START.match(piece))
            if latin or gap > 0.5 * char:
                text += " "
        text += piece
        prev = box
    return text
