"""The benchmark suite's systems run through the query pipeline and cite exactly."""

from __future__ import annotations

from policyqa.index.embedded import EmbeddedIndex as Index
from tests.helpers import fixture_documents, fixture_queries


def test_eval_systems_rerank_and_answer_cite_exactly(fixture_index: Index) -> None:
    from policyqa.eval.systems import SystemContext, resolve_systems

    settings = fixture_index.settings.model_copy(update={"answer_min_confidence": 0.0})
    context = SystemContext(index=fixture_index, settings=settings, depth=10)
    rerank, answer, sentence = resolve_systems(["rerank", "answer", "answer-sentence"])
    search = rerank.build_retrieval(context)
    answer_fn = answer.build_answer(context)
    sentence_fn = sentence.build_answer(context)
    docs = {d.id: d for d in fixture_documents()}
    for _qid, question, gold in fixture_queries():
        hits = search(question)
        assert hits and [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert hits[0].doc_id in gold or any(h.doc_id in gold for h in hits[:3])
        for fn in (answer_fn, sentence_fn):
            ans = fn(question)
            if not ans.no_answer:
                assert docs[ans.doc_id].text[ans.start : ans.end] == ans.text
        assert sentence_fn(question).answer_type in ("sentence", "none")
