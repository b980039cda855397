"""Where Chinese policy text breaks: sentences, clauses, bigrams. The one home of these rules.

Every stage cuts text, each for its own purpose, and the cuts differ on purpose; they are
defined here, side by side, so that a change to one is a decision about all:

=========================  =============================================  ===============================
rule                       breaks after                                   used by
=========================  =============================================  ===============================
:data:`CHUNK_SENTENCE_END` 。！？；!?; and a full stop before a space      the chunker, splitting a long
                           (paragraphs are already cut at line breaks)    paragraph into sentences
:data:`CHUNK_CLAUSE_END`   ，,、：:                                        the chunker, splitting a long
                                                                          sentence into clauses
:data:`SENTENCE_END`       。！？；!?; line breaks, runs of spaces         the sentences a reranker embeds
                                                                          (:func:`split_sentences`)
:data:`CLAUSE_END`         ，；：。！？,;:!? line breaks, runs of spaces    the clauses answer spans are made
                                                                          of (:func:`clause_spans`)
:data:`SENTENCE_STOPS`     。！？!?；; line break (single characters)       the sentence around an answer
                                                                          (:func:`enclosing_sentence`)
=========================  =============================================  ===============================

Closing quotes and brackets after a break stay with the piece before it. Offsets are always into
the text given, so every piece is verbatim ``text[start:end]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "CHUNK_CLAUSE_END",
    "CHUNK_SENTENCE_END",
    "CLAUSE_END",
    "CLAUSE_MARKS",
    "MIN_SENTENCE_CHARS",
    "QUESTION_CHARS",
    "SENTENCE_END",
    "SENTENCE_MAX_CHARS",
    "SENTENCE_STOPS",
    "char_bigrams",
    "clause_spans",
    "embedding_sentence_spans",
    "embedding_sentences",
    "enclosing_sentence",
    "is_space",
    "pieces_between",
    "query_bigrams",
    "split_sentences",
    "strip_span",
]

_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")

#: Sentence ends inside a paragraph, for the chunker.
CHUNK_SENTENCE_END = re.compile(r"(?:[。！？；!?;]+|\.(?=\s))[”’」』）)】〉》\"']*")
#: Clause ends inside a sentence, for the chunker.
CHUNK_CLAUSE_END = re.compile(r"[，,、：:]+[”’」』）)】〉》\"']*")
#: Sentence ends of the sentences a reranker embeds: line breaks and runs of spaces count too.
SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)]*|\n+|\s{2,}|[　]+")
#: Clause ends of answer spans (sentence ends are clause ends too).
CLAUSE_END = re.compile(r"[，；：。！？,;:!?\n]+[”’」』）)]*|\s{2,}|[　]+")
#: Characters that close a clause (what a span ending with one ends with).
CLAUSE_MARKS = frozenset("，；：。！？,;:!?”’」』）)")
#: Characters that end a sentence, for the sentence around an answer.
SENTENCE_STOPS = "。！？!?；;\n"

#: Sentences are cut at about this many characters before they are embedded.
SENTENCE_MAX_CHARS = 120
#: Shorter pieces (list markers, stray headings) are not embedded on their own.
MIN_SENTENCE_CHARS = 4

#: Question words and fillers that carry no evidence (dropped from query bigrams).
QUESTION_CHARS = frozenset("什么哪些哪个哪里多少怎么如何何时为何是否有无吗呢的了和与及对在是有")

_CJK_OR_WORD = re.compile(r"[\u4e00-\u9fff]|[A-Za-z]+|\d+")


def is_space(ch: str) -> bool:
    """Whitespace for chunking: Unicode whitespace plus zero-width spaces and the BOM."""
    return ch.isspace() or ch in _ZERO_WIDTH


def strip_span(
    text: str, start: int, end: int, is_blank: Callable[[str], bool] = str.isspace
) -> tuple[int, int]:
    """``[start, end)`` of ``text`` without leading and trailing whitespace (``is_blank``)."""
    while start < end and is_blank(text[start]):
        start += 1
    while end > start and is_blank(text[end - 1]):
        end -= 1
    return start, end


def pieces_between(
    text: str,
    ends: re.Pattern[str],
    lo: int = 0,
    hi: int | None = None,
    is_blank: Callable[[str], bool] = str.isspace,
) -> list[tuple[int, int]]:
    """Spans of ``text[lo:hi]`` (offsets into ``text``) cut after every match of ``ends`` (the
    match stays with the piece before it), whitespace (``is_blank``) trimmed, empty pieces
    dropped."""
    hi = len(text) if hi is None else hi
    raw: list[tuple[int, int]] = []
    pos = lo
    for m in ends.finditer(text, lo, hi):
        raw.append((pos, m.end()))
        pos = m.end()
    if pos < hi:
        raw.append((pos, hi))
    return [(s, e) for s, e in (strip_span(text, a, b, is_blank) for a, b in raw) if e > s]


def split_sentences(text: str, max_chars: int = 160) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text`` (:data:`SENTENCE_END`), whitespace trimmed,
    end punctuation kept. A sentence longer than ``max_chars`` is further cut after ，、：, so
    that no span is much longer than that."""
    out: list[tuple[int, int]] = []
    for s, e in pieces_between(text, SENTENCE_END):
        if e - s <= max_chars:
            out.append((s, e))
            continue
        # long sentence: cut after a comma-like mark near max_chars
        start = s
        while e - start > max_chars:
            window = text[start : start + max_chars]
            cut = max(window.rfind("，"), window.rfind("、"), window.rfind("："), window.rfind(","))
            cut = start + (cut + 1 if cut >= max_chars // 3 else max_chars)
            out.append((start, cut))
            start = cut
        if start < e:
            out.append((start, e))
    return out


def clause_spans(text: str, lo: int = 0, hi: int | None = None) -> list[tuple[int, int]]:
    """Clause spans of ``text[lo:hi]`` (:data:`CLAUSE_END`, offsets into ``text``), whitespace
    trimmed, the closing punctuation kept."""
    return pieces_between(text, CLAUSE_END, lo, hi)


def embedding_sentence_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of the sentences of a chunk that a reranker embeds: :func:`split_sentences`
    pieces (cut at :data:`SENTENCE_MAX_CHARS`), whitespace trimmed, of at least
    :data:`MIN_SENTENCE_CHARS` characters; the whole (trimmed) text when there is none; no
    sentence for an empty text."""
    pieces = [strip_span(text, a, b) for a, b in split_sentences(text, max_chars=SENTENCE_MAX_CHARS)]
    kept = [(a, b) for a, b in pieces if b - a >= MIN_SENTENCE_CHARS]
    if kept:
        return kept
    a, b = strip_span(text, 0, len(text))
    return [(a, b)] if b > a else []


def embedding_sentences(text: str) -> list[str]:
    """The texts of :func:`embedding_sentence_spans`: what the index embeds at build time for the
    sentence reranker, and what the reranker looks up."""
    return [text[a:b] for a, b in embedding_sentence_spans(text)]


def enclosing_sentence(text: str, start: int, end: int, reach: int = 300) -> tuple[int, int]:
    """The sentence(s) of ``text`` around ``[start, end)``: back to the previous sentence end
    and on to the next one (:data:`SENTENCE_STOPS`, at most ``reach`` characters each way),
    whitespace trimmed (``[start, end)`` itself when nothing is left)."""
    lo = max(0, start - reach)
    s = start
    while s > lo and text[s - 1] not in SENTENCE_STOPS:
        s -= 1
    hi = min(len(text), end + reach)
    e = end
    if e > s and text[e - 1] in SENTENCE_STOPS:
        pass
    else:
        while e < hi and text[e] not in SENTENCE_STOPS:
            e += 1
        if e < hi:
            e += 1
    s, e = strip_span(text, s, e)
    return (s, e) if e > s else (start, end)


def char_bigrams(text: str) -> set[str]:
    """Bigrams of CJK characters, words and numbers of ``text`` (punctuation breaks runs). Not
    the BM25 bigrams (:meth:`policyqa.index.tokenizer.ChineseTokenizer.terms` indexes those of
    the normalised text); these compare a question with a passage."""
    units = _CJK_OR_WORD.findall(text.lower())
    return {a + b for a, b in zip(units, units[1:], strict=False)}


def query_bigrams(query: str) -> set[str]:
    """The query's :func:`char_bigrams` without those made only of question words and fillers."""
    return {b for b in char_bigrams(query) if not all(ch in QUESTION_CHARS for ch in b)}
