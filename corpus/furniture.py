"""Page furniture and the parts of an official document that are metadata, not body text.

A paged source (PDF, scan, OFD) repeats things on every page that are no part of what it says:

- :func:`is_page_number`: page-number lines, ``— 3 —`` (GB/T 9704 公文), ``- 3 -``, ``第3页``,
  ``第 3 页 共 10 页``, ``3/10``;
- :func:`strip_furniture`: those, and running headers and footers: a line among the first or
  last :data:`EDGE_LINES` lines of a page that comes back (digits aside) on at least
  :data:`REPEAT_SHARE` of the pages, two at least.

An official document (GB/T 9704—2012 党政机关公文格式) opens with a 版头 (份号, 密级, 紧急程度,
the red 发文机关标志 ``…文件``, 发文字号, 签发人) and ends with a 版记 (抄送, 印发机关和印发日期).
:func:`split_official_parts` takes them off the body's lines into :class:`OfficialParts`, which
:meth:`OfficialParts.apply` writes into a document's metadata (issuer, 发文字号 and, in
``meta.extra``, ``red_head``, ``signer``, ``cc``, ``printed_by``, ``printed_date``). Only lines
that match these forms exactly, at the very start or end, are taken; a document without a 版头
keeps its first lines.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .metadata import find_doc_numbers, parse_date
from .models import DocMeta

__all__ = [
    "EDGE_LINES",
    "REPEAT_SHARE",
    "OfficialParts",
    "is_page_number",
    "split_official_parts",
    "strip_furniture",
]

#: Lines at the top and at the bottom of a page where running headers and footers are looked for.
EDGE_LINES = 2
#: Share of the pages a header or footer line must be on.
REPEAT_SHARE = 0.6

_SPACE = " \t\u3000\xa0"
_PAGE_NUMBER = re.compile(
    r"^[-—–－_·\s]*(?:第\s*)?\d{1,4}\s*(?:页)?(?:\s*/\s*(?:共\s*)?\d{1,4}\s*页?|\s*共\s*\d{1,4}\s*页)?[-—–－_·\s]*$"
)
_DIGITS = re.compile(r"\d+")
_BLANK = re.compile(r"[\s\u3000\xa0]+")


def is_page_number(line: str) -> bool:
    """Whether a line is nothing but a page number (see the module doc for the forms)."""
    s = line.strip(_SPACE)
    return bool(s) and bool(_PAGE_NUMBER.match(s))


def _shape(line: str) -> str:
    """A line with its digits and spaces taken out: ``第3页 2024`` and ``第4页 2024`` look alike."""
    return _DIGITS.sub("#", _BLANK.sub("", line))


def _edges(lines: list[str]) -> list[int]:
    """Indexes of the first and last :data:`EDGE_LINES` non-empty lines of a page."""
    filled = [i for i, s in enumerate(lines) if s.strip(_SPACE)]
    return sorted(set(filled[:EDGE_LINES] + filled[-EDGE_LINES:]))


def strip_furniture(pages: list[list[str]]) -> list[list[str]]:
    """The pages' lines without page numbers and running headers and footers (module doc)."""
    pages = [[s for s in page if not is_page_number(s)] for page in pages]
    if len(pages) < 2:
        return pages
    seen: Counter[str] = Counter()
    for page in pages:
        seen.update({_shape(page[i]) for i in _edges(page)})
    need = max(2, REPEAT_SHARE * len(pages))
    repeated = {shape for shape, n in seen.items() if n >= need and len(shape) >= 2}
    if not repeated:
        return pages
    out = []
    for page in pages:
        edges = set(_edges(page))
        out.append([s for i, s in enumerate(page) if not (i in edges and _shape(s) in repeated)])
    return out


# --------------------------------------------------------------------------------------------
# 版头 and 版记
# --------------------------------------------------------------------------------------------

_COPY_NUMBER = re.compile(r"^(?:份号[:：]?\s*)?\d{6}$")
_SECRECY = re.compile(r"^(?:绝密|机密|秘密)(?:[★☆\s]+.{0,8})?$")
_URGENCY = re.compile(r"^(?:特急|加急|特提|平急)$")
_RED_HEAD = re.compile(r"^(.{2,60}?)[\s\u3000]*文件$")
_NOT_ISSUER = re.compile(r"^(?:关于|转发|印发)|[《》“”的，。、]")  # a title that ends in 文件, not a red head
_SIGNER = re.compile(r"签发人[:：]\s*(.{2,30})$")
_RULE = re.compile(r"^[-—–－_=＝★☆·\s]+$")
_CC = re.compile(r"^抄\s*送[:：]\s*(.+)$")
_PRINTED = re.compile(r"^(.{2,40}?)[\s\u3000]*((?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日)\s*印\s*发$")
_PRINT_COUNT = re.compile(r"^[（(]?共印\s*\d+\s*份[）)]?$")
_HEAD_WINDOW = 8
_TAIL_WINDOW = 8


@dataclass(slots=True)
class OfficialParts:
    """The 版头 and 版记 of an official document (see the module doc)."""

    issuer: str | None = None
    doc_number: str | None = None
    signer: str | None = None
    cc: str | None = None
    printed_by: str | None = None
    printed_date: str | None = None
    red_head: list[str] = field(default_factory=list)
    colophon: list[str] = field(default_factory=list)
    #: how many of the lines were 版头 (at the start) and 版记 (at the end)
    head: int = 0
    tail: int = 0

    def apply(self, meta: DocMeta) -> None:
        """Write what was found into ``meta`` (fields already known are kept)."""
        meta.issuer = meta.issuer or self.issuer
        meta.doc_number = meta.doc_number or self.doc_number
        for key in ("signer", "cc", "printed_by", "printed_date"):
            value = getattr(self, key)
            if value:
                meta.extra.setdefault(key, value)
        if self.red_head:
            meta.extra.setdefault("red_head", list(self.red_head))
        if self.colophon:
            meta.extra.setdefault("colophon", list(self.colophon))


def _number_line(line: str) -> tuple[str, str | None] | None:
    """``(发文字号, 签发人)`` of a line that holds a 发文字号 (and maybe a 签发人) and nothing else."""
    signer = None
    rest = line
    m = _SIGNER.search(line)
    if m:
        signer = m.group(1).strip(_SPACE)
        rest = line[: m.start()].strip(_SPACE)
    numbers = find_doc_numbers(rest)
    if len(numbers) != 1:
        return None
    leftover = (rest[: numbers[0].start] + rest[numbers[0].end :]).strip(_SPACE)
    return (numbers[0].number, signer) if not leftover else None


def _head(lines: list[str], parts: OfficialParts) -> int:
    """How many of the first lines are 版头 (0 when there is no red head or 发文字号 line)."""
    taken = 0
    found = False
    for i, raw in enumerate(lines[:_HEAD_WINDOW]):
        s = raw.strip(_SPACE)
        if not s or _RULE.match(s) or _COPY_NUMBER.match(s) or _SECRECY.match(s) or _URGENCY.match(s):
            taken = i + 1
            continue
        red = _RED_HEAD.match(s)
        if red and _NOT_ISSUER.search(red.group(1)):
            red = None
        if red and parts.issuer is None and not found:
            parts.issuer = _BLANK.sub(" ", red.group(1)).strip()
            found = True
            taken = i + 1
            continue
        number = _number_line(s)
        if number is not None and parts.doc_number is None:
            parts.doc_number, signer = number
            parts.signer = parts.signer or signer
            found = True
            taken = i + 1
            continue
        signer_only = _SIGNER.match(s) if s.startswith("签发人") else None
        if signer_only and found:
            parts.signer = signer_only.group(1).strip(_SPACE)
            taken = i + 1
            continue
        break
    if not found:
        parts.issuer = parts.doc_number = parts.signer = None
        return 0
    parts.red_head = [s.strip(_SPACE) for s in lines[:taken] if s.strip(_SPACE)]
    return taken


def _tail(lines: list[str], parts: OfficialParts) -> int:
    """How many of the last lines are 版记 (0 when there is no 印发 line)."""
    n = len(lines)
    printed_at = None
    for i in range(n - 1, max(-1, n - 1 - _TAIL_WINDOW), -1):
        s = lines[i].strip(_SPACE)
        if not s or _RULE.match(s) or _PRINT_COUNT.match(s):
            continue
        m = _PRINTED.match(s)
        if m:
            printed_at = i
            parts.printed_by = m.group(1).strip(_SPACE)
            parts.printed_date = parse_date(m.group(2))
        break
    if printed_at is None:
        return 0
    start = printed_at
    for i in range(printed_at - 1, max(-1, printed_at - 5), -1):
        m = _CC.match(lines[i].strip(_SPACE))
        if m:
            wrapped = [x.strip(_SPACE) for x in lines[i + 1 : printed_at]]
            parts.cc = m.group(1).strip(_SPACE) + "".join(x for x in wrapped if x and not _RULE.match(x))
            start = i
            break
    while start > 0 and (not lines[start - 1].strip(_SPACE) or _RULE.match(lines[start - 1].strip(_SPACE))):
        start -= 1
    parts.colophon = [s.strip(_SPACE) for s in lines[start:] if s.strip(_SPACE)]
    return n - start


def split_official_parts(lines: list[str]) -> OfficialParts:
    """The 版头 and 版记 of a document's lines (module doc); the body is
    ``lines[parts.head : len(lines) - parts.tail]``."""
    parts = OfficialParts()
    parts.head = _head(lines, parts)
    parts.tail = _tail(lines[parts.head :], parts)
    return parts
