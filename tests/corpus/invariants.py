"""The guarantees every chunking must keep, as one assertion helper."""

from __future__ import annotations

from policyqa.corpus.models import Chunk, Document, stable_id
from policyqa.corpus.text import is_space


def check_invariants(doc: Document, chunks: list[Chunk], max_chars: int) -> None:
    """Exact offsets, stripped non-empty texts, length bound, order, stable ids, full coverage."""
    previous_start = -1
    for i, c in enumerate(chunks):
        assert c.doc_id == doc.id
        assert c.ordinal == i
        assert doc.text[c.start : c.end] == c.text, "offsets must cite the text exactly"
        assert c.text, "no empty chunk"
        assert not is_space(c.text[0]) and not is_space(c.text[-1]), "chunk text is stripped"
        assert len(c.text) <= max_chars, f"chunk of {len(c.text)} > {max_chars} characters"
        assert c.start > previous_start, "chunks are ordered by start"
        previous_start = c.start
        assert c.id == stable_id(doc.id, str(c.start), str(c.end))
    assert len({c.id for c in chunks}) == len(chunks)
    # coverage: the text between chunks is whitespace only
    reached = 0
    for c in chunks:
        if c.start > reached:
            gap = doc.text[reached : c.start]
            assert all(is_space(ch) for ch in gap), f"uncovered text at {reached}: {gap[:30]!r}"
        reached = max(reached, c.end)
    tail = doc.text[reached:]
    assert all(is_space(ch) for ch in tail), f"uncovered text at {reached}: {tail[:30]!r}"
