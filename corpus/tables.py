"""Tables as rows a reader and a search engine understand: every cell with its column's header.

A table is first laid out as a grid (:class:`Grid`): one :class:`GridCell` per row and layout
column, where a merged cell is the *same* cell object at every position it covers. From the grid,
:func:`table_lines` writes one line per row after the header row::

    项目 | 标准 | 期限                       (the header row: not a line of its own)
    稳岗返还 | 50% | 2024年底          →      项目: 稳岗返还 | 标准: 50% | 期限: 2024年底

- A cell merged across rows (Word's ``vMerge``, a PDF cell spanning rows) is expanded once into
  every row it covers; a cell merged across columns (``gridSpan``) appears once in its row,
  labelled with the header of its first column. No cell is repeated within a row, and two
  neighbouring cells that merely hold the same text both stay.
- Empty cells are left out; a cell whose header is empty, or the same text as the cell, is
  written bare.
- A table of one row, or whose first row has no text, has no header: its rows are the cells
  joined with ``' | '``.

:func:`docx_grid` lays out a python-docx table; :func:`pdf_grid` a table pdfplumber found on a
text-layer PDF page. Every line stays one line of the document text, and the chunker never cuts
a line of at most ``chunk_max_chars`` characters, so no row is split mid-row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docx.table import Table as DocxTable
    from pdfplumber.page import Page as PdfPage
    from pdfplumber.table import Table as PdfTable

__all__ = ["CELL_SEPARATOR", "Grid", "GridCell", "cell_text", "docx_grid", "pdf_grid", "table_lines"]

logger = logging.getLogger(__name__)

#: What separates the cells of a row in the document text.
CELL_SEPARATOR = " | "


@dataclass(slots=True, eq=False)
class GridCell:
    """One cell of a table (a merged cell is one object at every grid position it covers)."""

    text: str


#: Rows of layout positions; ``None`` where a row has no cell (Word rows may start late).
Grid = list[list[GridCell | None]]


def cell_text(text: str) -> str:
    """A cell's text on one line: its lines stripped and joined by a space."""
    return " ".join(s.strip(" \t\u3000\xa0") for s in text.split("\n") if s.strip(" \t\u3000\xa0"))


def _distinct(row: Sequence[GridCell | None]) -> list[tuple[int, GridCell]]:
    """``(first column, cell)`` of each distinct cell of a row, left to right (merged ones once)."""
    out: list[tuple[int, GridCell]] = []
    seen: set[int] = set()
    for col, cell in enumerate(row):
        if cell is None or id(cell) in seen:
            continue
        seen.add(id(cell))
        out.append((col, cell))
    return out


def table_lines(grid: Grid) -> list[str]:
    """The lines of a table: one per row below the header, each cell labelled with its header
    (see the module doc)."""
    rows = [row for row in grid if any(c is not None and c.text for c in row)]
    if not rows:
        return []
    header: list[str] = []
    body = rows
    if len(rows) > 1:
        first = rows[0]
        header = [cell.text if cell is not None else "" for cell in first]
        body = rows[1:]
        # a cell merged down from the header row is header, not data
        header_cells = {id(c) for c in first if c is not None}
        body = [[None if c is not None and id(c) in header_cells else c for c in row] for row in body]
    lines: list[str] = []
    for row in body:
        parts: list[str] = []
        for col, cell in _distinct(row):
            if not cell.text:
                continue
            label = header[col] if col < len(header) else ""
            parts.append(f"{label}: {cell.text}" if label and label != cell.text else cell.text)
        if parts:
            lines.append(CELL_SEPARATOR.join(parts))
    if not lines and header:  # a header with nothing under it: keep what it says
        lines.append(CELL_SEPARATOR.join(c.text for _col, c in _distinct(rows[0]) if c.text))
    return lines


def docx_grid(table: DocxTable) -> Grid:
    """The grid of a python-docx table: ``gridSpan`` and ``vMerge`` cells are one object."""
    by_element: dict[object, GridCell] = {}  # keyed by the element itself: it stays alive
    grid: Grid = []
    for row in table.rows:
        line: list[GridCell | None] = [None] * row.grid_cols_before
        for cell in row.cells:
            # python-docx gives a merged cell once per grid column and a vertical continuation as
            # the cell it continues, each time as a new proxy of the same <w:tc> element
            key = cell._tc
            found = by_element.get(key)
            if found is None:
                found = GridCell(cell_text(cell.text))
                by_element[key] = found
            line.append(found)
        line.extend([None] * row.grid_cols_after)
        grid.append(line)
    return grid


def _edges(values: list[float], tolerance: float = 1.5) -> list[float]:
    """Distinct cell edges: values closer than ``tolerance`` points are one edge."""
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > tolerance:
            out.append(v)
    return out


def pdf_grid(page: PdfPage, table: PdfTable) -> Grid:
    """The grid of a table pdfplumber found on ``page``: rows and columns are the distinct cell
    edges, and each cell's text fills every position its box covers (merged cells once)."""
    boxes = [tuple(float(v) for v in cell) for cell in table.cells]
    if not boxes:
        return []
    xs = _edges([b[0] for b in boxes] + [b[2] for b in boxes])
    ys = _edges([b[1] for b in boxes] + [b[3] for b in boxes])
    cols = list(zip(xs, xs[1:], strict=False))
    rows = list(zip(ys, ys[1:], strict=False))
    grid: Grid = [[None] * len(cols) for _ in rows]
    for x0, top, x1, bottom in boxes:
        text = cell_text(page.crop((x0, top, x1, bottom), strict=False).extract_text() or "")
        cell = GridCell(text)
        for r, (a, b) in enumerate(rows):
            if not top - 0.5 <= (a + b) / 2 <= bottom + 0.5:
                continue
            for c, (left, right) in enumerate(cols):
                if x0 - 0.5 <= (left + right) / 2 <= x1 + 0.5:
                    grid[r][c] = cell
    return [row for row in grid if any(c is not None for c in row)]
