"""Structure-aware chunking of Chinese policy documents into cited passages.

:class:`Chunker` cuts a :class:`Document` into :class:`Chunk` objects whose offsets point into
``document.text``. How:

1. **Blocks.** Every line is a block. A line longer than ``max_chars`` (and the one-line
   documents common in web-scraped corpora) is cut further at space runs next to Chinese text
   and before inline items that follow a sentence end (``。 二、…``, ``；（三）…``).
2. **Headings.** A block that starts with a markdown ``#``, ``第X编/章/节``, ``第X条``, a
   numbered item (``一、`` ``（一）`` ``1.`` ``1、`` ``1．`` ``(1)`` ``①``) with a short lead, or
   a short title-like line between paragraphs, opens a section. Each section has a heading path
   such as ``第二章 总则 > 第十条``: a heading of a kind already on the path replaces it and
   everything below; 编 > 章 > 节 > 条 and markdown levels nest by rank; other numbered kinds
   nest in the order they appear. Items inside an article (``第X条`` … ``（一）``) are list
   items, not headings. A section with nothing but its heading line joins the next one.
3. **Packing.** Consecutive paragraphs of a section are packed up to ``max_chars``. A longer
   paragraph is split at sentence ends (``。！？；!?;`` and closing quotes/brackets after them);
   consecutive pieces of one paragraph share an overlap of whole sentences of at most
   ``overlap_chars``. A sentence longer than ``max_chars`` is split at ``，、：`` and, failing
   that, cut hard at ``max_chars``.
4. **Small pieces.** A piece shorter than ``min_chars`` is merged into the previous chunk (else
   the next) when the result still fits in ``max_chars``; a merge across sections keeps the
   common part of the two heading paths.
5. **Tokens.** With ``token_counter`` and ``max_tokens``, a chunk over the token limit is split
   again with a proportionally smaller character limit.

Guarantees (tested): ``doc.text[c.start:c.end] == c.text``; chunk texts have no surrounding
whitespace; every non-whitespace character of the document is in some chunk; chunks are ordered
by ``start`` (only overlaps go back); no chunk is longer than ``max_chars``.

Chunk ids are ``stable_id(doc.id, str(start), str(end))``: chunking the same text again gives the
same ids, and an edit elsewhere in the document leaves ids of unmoved chunks alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .models import Chunk, Document, stable_id
from .text import CHUNK_CLAUSE_END, CHUNK_SENTENCE_END, is_space, pieces_between, strip_span

if TYPE_CHECKING:
    from policyqa.settings import Settings

__all__ = ["Chunker", "heading_of"]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# heading recognition
# --------------------------------------------------------------------------------------------

_N = "一二三四五六七八九十百千零〇两"
_MD = re.compile(r"#{1,6}(?=[ \t])")
_LEGAL_LINE = re.compile(rf"第[{_N}\d]+(分编|编|章|节)")
_ARTICLE = re.compile(rf"第[{_N}\d]+条(?:之[{_N}]+)?(?=[\s\u3000【（(:：]|$)")
_NUMBERED: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cn", re.compile(r"[一二三四五六七八九十]{1,3}[、．.]")),
    ("pcn", re.compile(r"[（(][一二三四五六七八九十]{1,3}[）)]")),
    ("num", re.compile(r"\d{1,2}(?:[、．]|\.(?!\d))")),
    ("pnum", re.compile(r"[（(]\d{1,2}[）)]")),
    ("circ", re.compile(r"[①-⑳]")),
)
_LEGAL_KIND = {"编": "bian", "分编": "fenbian", "章": "zhang", "节": "jie"}
_ITEM_KINDS = frozenset(("cn", "pcn", "num", "pnum", "circ"))
_LEGAL_RANK = {"bian": 1, "fenbian": 2, "zhang": 3, "jie": 4, "tiao": 5}
_LEAD_END = re.compile(r"[。！？；：:!?;]")
_TERMINAL = re.compile(r"[。！？；：!?;:…][”’」』）)】》\"']*$")
_INNER_PUNCT = re.compile(r"[。！？；，：!?;,:]")
_OPENS_WITH_PUNCT = re.compile(r"^[》」』”’）)，。、；：,.;:!?！？]")
_BYLINE = re.compile(r"^(?:[□■◆●▲★]|本报记者|本报讯|记者|通讯员|来源[:：]|作者[:：]|责任编辑)")
_SPACES = re.compile(r"\s+")

_LABEL_MAX = 50
_LEAD_MAX = 30
_TITLE_LINE_MAX = 30
_NUMBERED_LINE_MAX = 40


def _label(text: str) -> str:
    label = _SPACES.sub(" ", text.replace("\u200b", "")).strip()
    return label if len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "…"


@dataclass(slots=True)
class _Block:
    start: int
    end: int
    from_line: bool  # a whole line (not a piece cut out of a long line)
    kind: str | None = None
    label: str = ""
    heading_only: bool = False


def _numbered(text: str) -> tuple[str, str, bool] | None:
    """``(kind, label, heading_only)`` when ``text`` is a numbered heading with a short lead."""
    for kind, pattern in _NUMBERED:
        m = pattern.match(text)
        if not m:
            continue
        rest = text[m.end() :].strip()
        if not rest:
            return kind, text.strip(), True
        if len(text) <= _NUMBERED_LINE_MAX and not _INNER_PUNCT.search(text):
            return kind, text, True
        lead = _LEAD_END.search(text, m.end())
        if lead and lead.group() != "；" and lead.group() != ";" and 0 < lead.start() - m.end() <= _LEAD_MAX:
            head = text[: lead.start()]
            if not re.search("[，,、]", head[m.end() :]) or lead.group() in "：:":
                return kind, head, lead.end() >= len(text.rstrip())
        return None
    return None


def _classify(text: str) -> tuple[str, str, bool] | None:
    """Explicit heading patterns: markdown, 编/章/节, 条, numbered items."""
    if text.startswith("#"):
        m = _MD.match(text)
        if m:
            inner = text[m.end() :].strip().rstrip("#").strip()
            legal = _LEGAL_LINE.match(inner)
            if legal:
                return _LEGAL_KIND[legal.group(1)], inner, True
            return f"md{m.end()}", inner, True
    if text.startswith("第"):
        m = _LEGAL_LINE.match(text)
        if m and len(text) <= _NUMBERED_LINE_MAX and not _INNER_PUNCT.search(text):
            return _LEGAL_KIND[m.group(1)], text, True
        m = _ARTICLE.match(text)
        if m:
            return "tiao", m.group(), not text[m.end() :].strip()
    return _numbered(text)


def heading_of(line: str) -> str | None:
    """The heading label of a line that is a heading by pattern alone (no context), else None.

    ``'## 第二章  总则'`` → ``'第二章 总则'``, ``'第十条 为了…'`` → ``'第十条'``,
    ``'（一）加强组织领导。各地…'`` → ``'（一）加强组织领导'``.
    """
    found = _classify(line.strip())
    return _label(found[1]) if found else None


def _push(stack: list[tuple[str, str]], kind: str, label: str) -> None:
    """Put a heading on the path (see the module doc for the rules)."""
    cut: int | None = None
    for i, entry in enumerate(stack):
        if entry[0] == kind:
            cut = i
            break
    if cut is None:
        if kind.startswith("md"):
            level = int(kind[2:])
            cut = next(
                (i for i, (k, _) in enumerate(stack) if not k.startswith("md") or int(k[2:]) >= level), None
            )
        elif kind in _LEGAL_RANK:
            rank = _LEGAL_RANK[kind]
            cut = next(
                (
                    i
                    for i, (k, _) in enumerate(stack)
                    if (k in _LEGAL_RANK and _LEGAL_RANK[k] >= rank)
                    or (k not in _LEGAL_RANK and not k.startswith("md"))
                ),
                None,
            )
    if cut is not None:
        del stack[cut:]
    stack.append((kind, label))


# --------------------------------------------------------------------------------------------
# sentences
# --------------------------------------------------------------------------------------------

_INLINE_SPACE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_INLINE_ITEM = re.compile(
    rf"(?<=[。；！？!?;])[”’」』）)】》]*(?=第[{_N}\d]+[编章节条]|[一二三四五六七八九十]{{1,3}}[、．]|"
    r"[（(][一二三四五六七八九十\d]{1,3}[）)]|\d{1,2}[、．]|[①-⑳])"
)
_ASCII_WORD = re.compile(r"[A-Za-z0-9]")
_NEWLINE = re.compile("\n")


def _hard_cuts(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Cut at ``limit`` characters, preferring a space in the last 30% and not splitting a
    Latin word or number when a boundary is near."""
    out: list[tuple[int, int]] = []
    s = start
    while end - s > limit:
        cut = s + limit
        floor = s + max(1, int(limit * 0.7))
        space = next((i for i in range(cut, floor, -1) if is_space(text[i - 1])), None)
        if space is not None:
            cut = space
        elif _ASCII_WORD.match(text[cut - 1]) and _ASCII_WORD.match(text[cut]):
            i = cut - 1
            while i > floor and _ASCII_WORD.match(text[i - 1]):
                i -= 1
            if i > floor:
                cut = i
        a, b = strip_span(text, s, cut, is_space)
        if a < b:
            out.append((a, b))
        s, _ = strip_span(text, cut, end, is_space)
    a, b = strip_span(text, s, end, is_space)
    if a < b:
        out.append((a, b))
    return out


def _split_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Sentence (then clause, then hard) pieces of ``text[start:end]``, each ``<= limit``."""
    out: list[tuple[int, int]] = []
    for s, e in pieces_between(text, CHUNK_SENTENCE_END, start, end, is_space):
        if e - s <= limit:
            out.append((s, e))
            continue
        for cs, ce in pieces_between(text, CHUNK_CLAUSE_END, s, e, is_space):
            if ce - cs <= limit:
                out.append((cs, ce))
            else:
                out.extend(_hard_cuts(text, cs, ce, limit))
    return out


# --------------------------------------------------------------------------------------------
# the chunker
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Piece:
    start: int
    end: int
    section: int
    path: tuple[str, ...]


def _drop_contained(pieces: list[_Piece]) -> list[_Piece]:
    """Sorted by start; a piece inside another one (re-split overlaps) is dropped."""
    pieces.sort(key=lambda p: (p.start, -p.end))
    out: list[_Piece] = []
    for p in pieces:
        if out and p.end <= out[-1].end:
            continue
        out.append(p)
    return out


def _common_path(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return a[:n]


class Chunker:
    """Cuts documents into passages; see the module doc for the rules and guarantees.

    ``max_chars``: upper bound of a chunk's length. ``overlap_chars``: the most characters of
    whole sentences repeated between consecutive pieces of one long paragraph. ``min_chars``:
    shorter pieces are merged into a neighbour. ``token_counter`` (texts → token counts) and
    ``max_tokens``: split chunks further until each fits the encoder's limit (a counter without
    a limit is ignored). The counter sees the chunk text only: leave room in ``max_tokens`` for
    a title prefix or prompt the encoder adds.
    """

    def __init__(
        self,
        max_chars: int = 300,
        overlap_chars: int = 40,
        min_chars: int = 30,
        token_counter: Callable[[list[str]], list[int]] | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if max_chars < 10:
            raise ValueError(f"max_chars must be at least 10, got {max_chars}")
        if not 0 <= overlap_chars < max_chars:
            raise ValueError(f"overlap_chars must be in [0, max_chars), got {overlap_chars}")
        if not 0 <= min_chars <= max_chars:
            raise ValueError(f"min_chars must be in [0, max_chars], got {min_chars}")
        if max_tokens is not None and token_counter is None:
            raise ValueError("max_tokens needs a token_counter")
        if token_counter is not None and max_tokens is None:
            logger.debug("token_counter without max_tokens: no token limit applied")
            token_counter = None
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.max_chars = max_chars
        self.overlap_chars = overlap_chars
        self.min_chars = min_chars
        self.token_counter = token_counter
        self.max_tokens = max_tokens

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        token_counter: Callable[[list[str]], list[int]] | None = None,
        max_tokens: int | None = None,
    ) -> Chunker:
        """A chunker with ``settings.chunk_max_chars``, ``chunk_overlap_chars``, ``chunk_min_chars``."""
        return cls(
            max_chars=settings.chunk_max_chars,
            overlap_chars=settings.chunk_overlap_chars,
            min_chars=settings.chunk_min_chars,
            token_counter=token_counter,
            max_tokens=max_tokens,
        )

    def __repr__(self) -> str:
        return (
            f"Chunker(max_chars={self.max_chars}, overlap_chars={self.overlap_chars}, "
            f"min_chars={self.min_chars}, max_tokens={self.max_tokens})"
        )

    # ---- public ------------------------------------------------------------------------------

    def split(self, doc: Document) -> list[Chunk]:
        """The chunks of ``doc`` in order (empty for a document without text)."""
        text = doc.text
        pieces = self._pieces(text, doc.title.strip())
        pieces = self._merge_small(pieces)
        if self.token_counter is not None and self.max_tokens is not None and pieces:
            pieces = _drop_contained(self._fit_tokens(text, pieces, self.token_counter, self.max_tokens))
        return [
            Chunk(
                id=stable_id(doc.id, str(p.start), str(p.end)),
                doc_id=doc.id,
                text=text[p.start : p.end],
                start=p.start,
                end=p.end,
                heading=" > ".join(p.path),
                ordinal=i,
            )
            for i, p in enumerate(pieces)
        ]

    def split_many(self, docs: Iterable[Document]) -> Iterator[Chunk]:
        """The chunks of each document in turn."""
        for doc in docs:
            yield from self.split(doc)

    # ---- blocks and sections -----------------------------------------------------------------

    def _blocks(self, text: str) -> list[_Block]:
        blocks: list[_Block] = []
        pos = 0
        n = len(text)
        while pos < n:
            nl = text.find("\n", pos)
            if nl < 0:
                nl = n
            s, e = strip_span(text, pos, nl, is_space)
            if s < e:
                if e - s > self.max_chars:
                    blocks.extend(self._segments(text, s, e))
                else:
                    blocks.append(_Block(s, e, True))
            pos = nl + 1
        return blocks

    def _segments(self, text: str, start: int, end: int) -> list[_Block]:
        """A long line cut at space runs next to non-ASCII text and before inline items."""
        cuts: list[tuple[int, int]] = []  # (end of piece, start of next)
        for m in _INLINE_SPACE.finditer(text, start, end):
            a, b = m.start(), m.end()
            if a == start or b == end:
                continue
            if text[a - 1].isascii() and text[b].isascii():
                continue
            cuts.append((a, b))
        for m in _INLINE_ITEM.finditer(text, start, end):
            cuts.append((m.end(), m.end()))
        if not cuts:
            return [_Block(start, end, False)]
        cuts.sort()
        blocks: list[_Block] = []
        pos = start
        for a, b in cuts:
            if a < pos:
                continue
            s, e = strip_span(text, pos, a, is_space)
            if s < e:
                blocks.append(_Block(s, e, False))
            pos = b
        s, e = strip_span(text, pos, end, is_space)
        if s < e:
            blocks.append(_Block(s, e, False))
        # "第一章" "总则" cut apart by the space between them: join them again
        joined: list[_Block] = []
        for blk in blocks:
            if joined:
                prev = joined[-1]
                prev_text = text[prev.start : prev.end]
                cur_text = text[blk.start : blk.end]
                if (
                    _LEGAL_LINE.fullmatch(prev_text)
                    and len(cur_text) <= 15
                    and not _INNER_PUNCT.search(cur_text)
                ):
                    prev.end = blk.end
                    continue
            joined.append(blk)
        return joined

    def _sections(self, text: str, title: str) -> list[tuple[tuple[str, ...], list[_Block]]]:
        blocks = self._blocks(text)
        for blk in blocks:
            found = _classify(text[blk.start : blk.end])
            if found:
                blk.kind, blk.label, blk.heading_only = found[0], _label(found[1]), found[2]
        stack: list[tuple[str, str]] = []
        sections: list[tuple[tuple[str, ...], list[_Block]]] = []
        current: list[_Block] = []
        current_has_body = False  # a section of heading lines only joins the next one
        current_path: tuple[str, ...] = ()
        seen_body = False
        in_article = False
        for i, blk in enumerate(blocks):
            kind = blk.kind
            if kind in _ITEM_KINDS and in_article:
                kind = None  # the items of an article are a list, not sections
            if kind is not None and blk.heading_only and blk.label == title:
                kind = None  # the document's own title line
            if (
                kind is None
                and blk.from_line
                and seen_body
                and not in_article
                and self._title_like(text, blocks, i, title)
            ):
                kind, blk.label, blk.heading_only = "title", _label(text[blk.start : blk.end]), True
            blk.kind = kind
            if kind is None:
                current.append(blk)
                current_has_body = True
                if not seen_body:
                    block_text = text[blk.start : blk.end]
                    seen_body = bool(
                        len(block_text) > _TITLE_LINE_MAX
                        or _TERMINAL.search(block_text)
                        or _BYLINE.match(block_text)
                    )
                continue
            _push(stack, kind, blk.label)
            in_article = any(k == "tiao" for k, _ in stack)
            if current_has_body:
                sections.append((current_path, current))
                current = []
            current.append(blk)
            current_has_body = not blk.heading_only
            current_path = tuple(label for _k, label in stack)
            seen_body = True
        if current:
            sections.append((current_path, current))
        return sections

    @staticmethod
    def _title_like(text: str, blocks: list[_Block], i: int, title: str) -> bool:
        """A short line between paragraphs that reads as a section title."""
        blk = blocks[i]
        s = text[blk.start : blk.end]
        if not 2 <= len(s) <= _TITLE_LINE_MAX or s == title:
            return False
        if _INNER_PUNCT.search(s) or _OPENS_WITH_PUNCT.match(s) or _BYLINE.match(s):
            return False
        if i == 0 or i + 1 >= len(blocks):
            return False
        prev = blocks[i - 1]
        prev_text = text[prev.start : prev.end]
        if not (_TERMINAL.search(prev_text) or prev.kind is not None or _BYLINE.match(prev_text)):
            return False
        nxt = blocks[i + 1]
        nxt_text = text[nxt.start : nxt.end]
        if _OPENS_WITH_PUNCT.match(nxt_text):
            return False
        return nxt.kind is not None or len(nxt_text) > _TITLE_LINE_MAX or bool(_TERMINAL.search(nxt_text))

    # ---- packing -----------------------------------------------------------------------------

    def _pieces(self, text: str, title: str) -> list[_Piece]:
        out: list[_Piece] = []
        for index, (path, blocks) in enumerate(self._sections(text, title)):
            units: list[tuple[int, int, int]] = []
            for b_index, blk in enumerate(blocks):
                if blk.end - blk.start <= self.max_chars:
                    units.append((blk.start, blk.end, b_index))
                else:
                    units.extend(
                        (s, e, b_index) for s, e in _split_long(text, blk.start, blk.end, self.max_chars)
                    )
            for s, e in self._pack(units, self.max_chars):
                out.append(_Piece(s, e, index, path))
        return out

    def _pack(self, units: list[tuple[int, int, int]], limit: int) -> list[tuple[int, int]]:
        """Greedy packing of ``(start, end, paragraph)`` units into spans ``<= limit``, with a
        sentence overlap when a paragraph continues into the next span."""
        spans: list[tuple[int, int]] = []
        n = len(units)
        first = 0
        while first < n:
            start = units[first][0]
            last = first
            while last + 1 < n and units[last + 1][1] - start <= limit:
                last += 1
            spans.append((start, units[last][1]))
            nxt = last + 1
            if nxt >= n:
                break
            k = nxt
            if self.overlap_chars and units[nxt][2] == units[last][2]:
                para = units[nxt][2]
                while (
                    k - 1 > first
                    and units[k - 1][2] == para
                    and units[last][1] - units[k - 1][0] <= self.overlap_chars
                    and units[nxt][1] - units[k - 1][0] <= limit
                ):
                    k -= 1
            first = k
        return spans

    def _merge_small(self, pieces: list[_Piece]) -> list[_Piece]:
        if self.min_chars <= 0 or len(pieces) < 2:
            return pieces
        out: list[_Piece] = []
        carry: _Piece | None = None  # a small piece waiting to be merged forward
        for p in pieces:
            if carry is not None:
                if p.end - carry.start <= self.max_chars:
                    path = (
                        p.path
                        if p.path[: len(carry.path)] == carry.path
                        else _common_path(carry.path, p.path)
                    )
                    p = _Piece(carry.start, p.end, p.section, path)
                else:
                    out.append(carry)
                carry = None
            if p.end - p.start >= self.min_chars:
                out.append(p)
                continue
            prev = out[-1] if out else None
            if prev is not None and p.end - prev.start <= self.max_chars:
                path = prev.path if prev.section == p.section else _common_path(prev.path, p.path)
                out[-1] = _Piece(prev.start, p.end, prev.section, path)
            else:
                carry = p
        if carry is not None:
            out.append(carry)
        return out

    # ---- token limit -------------------------------------------------------------------------

    def _fit_tokens(
        self, text: str, pieces: list[_Piece], counter: Callable[[list[str]], list[int]], max_tokens: int
    ) -> list[_Piece]:
        counts = counter([text[p.start : p.end] for p in pieces])
        if len(counts) != len(pieces):
            raise ValueError(f"token_counter returned {len(counts)} counts for {len(pieces)} texts")
        out: list[_Piece] = []
        for piece, count in zip(pieces, counts, strict=True):
            if count <= max_tokens:
                out.append(piece)
            else:
                out.extend(self._split_to_tokens(text, piece, count, counter, max_tokens))
        return out

    def _split_to_tokens(
        self, text: str, piece: _Piece, count: int, counter: Callable[[list[str]], list[int]], max_tokens: int
    ) -> list[_Piece]:
        todo = [(piece.start, piece.end, count)]
        done: list[tuple[int, int]] = []
        for _round in range(8):
            if not todo:
                break
            again: list[tuple[int, int, int]] = []
            for s, e, c in todo:
                limit = max(1, min(e - s - 1, int((e - s) * max_tokens / c * 0.9)))
                units: list[tuple[int, int, int]] = []
                for para, (ls, le) in enumerate(pieces_between(text, _NEWLINE, s, e, is_space)):
                    if le - ls <= limit:
                        units.append((ls, le, para))
                    else:
                        units.extend((a, b, para) for a, b in _split_long(text, ls, le, limit))
                spans = self._pack(units, limit)
                counts = counter([text[a:b] for a, b in spans])
                for (a, b), n in zip(spans, counts, strict=True):
                    if n <= max_tokens or b - a <= 1:
                        done.append((a, b))
                    else:
                        again.append((a, b, n))
            todo = again
        if todo:
            logger.warning("%d piece(s) still over %d tokens after splitting", len(todo), max_tokens)
            done.extend((s, e) for s, e, _c in todo)
        done.sort()
        return [_Piece(a, b, piece.section, piece.path) for a, b in done]
