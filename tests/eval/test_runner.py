"""The runner end to end on tiny benchmarks with fake systems and a fake index (no model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from policyqa.eval.datasets import load_beir, load_squad
from policyqa.eval.metrics import RETRIEVAL_METRICS
from policyqa.eval.report import format_table, markdown_report
from policyqa.eval.runner import (
    MARKER_FILE,
    RECORDED_PACKAGES,
    BuiltSystem,
    EvalError,
    evaluate_systems,
    index_cache_key,
    prepare_index,
    run_benchmark,
    settings_summary,
)
from policyqa.eval.systems import (
    SystemContext,
    SystemNotAvailableError,
    UnknownSystemError,
    available_systems,
    default_systems,
    known_systems,
    register_system,
    resolve_systems,
)
from policyqa.index.embedded import EmbeddedIndex as Index
from policyqa.qa import QAPipeline
from policyqa.retriever.base import Hit
from policyqa.retriever.factory import retriever_for
from policyqa.settings import Settings
from tests.eval.conftest import open_tiny_index


def mkhit(rank: int, doc_id: str, start: int = 0, end: int = 1000, chunk: str | None = None) -> Hit:
    return Hit(
        chunk_id=chunk or f"{doc_id}@{start}",
        doc_id=doc_id,
        score=10.0 - rank,
        rank=rank,
        text=f"passage of {doc_id}",
        start=start,
        end=end,
    )


def scripted(results: dict[str, list[Hit]], queries: dict[str, str]) -> BuiltSystem:
    by_text = {queries[q]: hits for q, hits in results.items()}
    return BuiltSystem("scripted", "retrieval", lambda text: by_text.get(text, []))


def test_evaluate_doc_level_known_values(beir_tiny: Path, settings: Settings) -> None:
    bench = load_beir(beir_tiny)
    # q1: d1 (grade 2) at chunk rank 2, but d4 (grade 0) and d1 again around it -> doc ranking [d4, d1]
    # q2: gold d3 first; q3: nothing; q4: d4 at rank 1 and 5 at rank 3 (two relevant)
    system = scripted(
        {
            "q1": [mkhit(1, "d4"), mkhit(2, "d1", 0, 10), mkhit(3, "d1", 10, 20)],
            "q2": [mkhit(1, "d3")],
            "q3": [],
            "q4": [mkhit(1, "d4"), mkhit(2, "d2"), mkhit(3, "5")],
        },
        bench.queries,
    )
    result = evaluate_systems(bench, [system], level="doc", settings=settings)
    s = result.systems["scripted"]
    assert s.per_query["q1"]["mrr@10"] == pytest.approx(0.5)
    assert s.per_query["q1"]["gold_rank"] == 2
    assert s.per_query["q3"]["gold_rank"] is None
    assert s.per_query["q4"]["recall@1"] == pytest.approx(0.5)
    assert s.metrics["mrr@10"] == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    assert s.metrics["recall@5"] == pytest.approx(3 / 4)
    assert len(s.latencies_ms) == 4 and all(t >= 0 for t in s.latencies_ms)
    assert len(s.recall_curve) == 100 and s.recall_curve[4] == pytest.approx(s.metrics["recall@5"])
    assert result.primary() is s
    assert result.worst_queries(2) == ["q3", "q1"]


def test_evaluate_chunk_level_on_squad(squad_tiny: Path, settings: Settings) -> None:
    bench = load_squad(squad_tiny)
    p1 = bench.doc_by_id()["P1"].text
    span_start = p1.find("2024年3月1日")
    system = scripted(
        {
            # S1: a P1 chunk that cuts the span, then one that holds it
            "S1": [mkhit(1, "P1", 0, span_start + 3, "c-cut"), mkhit(2, "P1", 0, 40, "c-ok")],
            # S3: right document, wrong part
            "S3": [mkhit(1, "P2", 0, 5, "p2-head")],
            # S4: no-answer question: any chunk of its paragraph is the gold item
            "S4": [mkhit(1, "P1", 0, 40, "x"), mkhit(2, "P2", 20, 40, "y")],
        },
        bench.queries,
    )
    result = evaluate_systems(bench, [system], level="chunk", settings=settings)
    per_query = result.systems["scripted"].per_query
    assert per_query["S1"]["mrr@10"] == pytest.approx(0.5)
    assert per_query["S3"]["mrr@10"] == 0.0
    assert per_query["S4"]["mrr@10"] == pytest.approx(0.5)
    assert per_query["S2"]["mrr@10"] == 0.0  # nothing returned
    assert result.to_json()["level"] == "chunk"


def test_chunk_level_needs_spans(beir_copy: Path, settings: Settings) -> None:
    (beir_copy / "answers.jsonl").unlink()
    bench = load_beir(beir_copy)
    with pytest.raises(EvalError, match="--level chunk needs chunk-level gold"):
        evaluate_systems(bench, [], level="chunk", settings=settings)


def test_failing_queries_score_zero_and_are_counted(beir_tiny: Path, settings: Settings) -> None:
    bench = load_beir(beir_tiny)

    def flaky(text: str) -> list[Hit]:
        if "展会" in text:
            raise RuntimeError("boom")
        return [mkhit(1, "d1"), mkhit(2, "d2"), mkhit(3, "d4")]

    result = evaluate_systems(
        bench, [BuiltSystem("flaky", "retrieval", flaky)], level="doc", settings=settings
    )
    s = result.systems["flaky"]
    assert s.errors == {"q2": "RuntimeError: boom"}
    assert s.per_query["q2"]["ndcg@10"] == 0.0
    assert s.summary()["errors"] == 1

    def broken(text: str) -> list[Hit]:
        raise RuntimeError("always")

    with pytest.raises(EvalError, match="failed on every query"):
        evaluate_systems(bench, [BuiltSystem("broken", "retrieval", broken)], level="doc", settings=settings)


def test_before_query_runs_untimed_before_each_timed_query(beir_tiny: Path, settings: Settings) -> None:
    """The hook (the encoder's forget_queries in a real run) runs once per timed query, after
    the warm-up query and never inside a timed call."""
    bench = load_beir(beir_tiny)
    events: list[str] = []

    def search(text: str) -> list[Hit]:
        events.append("search")
        return [mkhit(1, "d1")]

    system = BuiltSystem("hooked", "retrieval", search, lambda: events.append("before"))
    evaluate_systems(bench, [system], level="doc", settings=settings)
    assert events == ["search"] + ["before", "search"] * len(bench.queries)


class Answer:
    def __init__(self, text: str, no_answer: bool = False, confidence: float = 0.5) -> None:
        self.text, self.no_answer, self.confidence = text, no_answer, confidence
        self.sentence = ""
        self.doc_id: str | None = None
        self.start: int | None = None
        self.end: int | None = None


def test_answer_system_metrics(beir_tiny: Path, settings: Settings) -> None:
    bench = load_beir(beir_tiny)
    replies = {
        "q1": Answer("增值税"),
        "q2": Answer("给予五十万元补贴"),
        "q3": Answer("", True),
        "q4": Answer("", True),
    }
    by_text = {bench.queries[q]: a for q, a in replies.items()}
    system = BuiltSystem("reader", "answer", lambda text: by_text[text])
    result = evaluate_systems(bench, [system], level="doc", settings=settings)
    assert result.answers is not None
    # q1 exact; q2 contains only (F1 = 2*(4/8)*1/(4/8+1) = 2/3); q3 wrongly abstains; q4 rightly abstains
    assert result.answers["exact_match"] == pytest.approx(2 / 4)
    assert result.answers["contains"] == pytest.approx(3 / 4)
    assert result.answers["f1"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)
    assert result.answers["no_answer_accuracy"] == pytest.approx(3 / 4)
    assert result.to_json()["answers"]["exact_match"] == 0.5


def test_calibration_says_how_often_each_confidence_band_is_right(
    beir_tiny: Path, settings: Settings
) -> None:
    bench = load_beir(beir_tiny)
    replies = {
        "q1": Answer("增值税", confidence=0.9),  # high, F1 1: right
        "q2": Answer("给予五十万元补贴", confidence=0.75),  # high, F1 2/3: right (≥ 0.5)
        "q3": Answer("", True),  # none on an answerable question: wrong
        "q4": Answer("", True),  # none on a question without answer: right
    }
    by_text = {bench.queries[q]: a for q, a in replies.items()}
    result = evaluate_systems(
        bench, [BuiltSystem("reader", "answer", lambda text: by_text[text])], level="doc", settings=settings
    )
    bands = result.systems["reader"].calibration
    assert bands is not None
    assert bands["high"] == {
        "questions": 2.0,
        "share": 0.5,
        "right": 1.0,
        "f1": pytest.approx((1 + 2 / 3) / 2),
        "contains": 1.0,
    }
    assert bands["none"]["questions"] == 2.0 and bands["none"]["right"] == 0.5
    assert bands["medium"]["questions"] == bands["low"]["questions"] == 0.0
    assert result.to_json()["systems"]["reader"]["calibration"]["high"]["right"] == 1.0
    assert "confidence" in format_table(result) and "high" in format_table(result)


def test_answer_limit_reads_and_scores_the_first_questions_only(beir_tiny: Path, settings: Settings) -> None:
    bench = load_beir(beir_tiny)
    replies = {"q1": Answer("增值税"), "q2": Answer("给予五十万元补贴")}
    asked: list[str] = []

    def reader(text: str) -> Answer:
        asked.append(text)
        return next(a for q, a in replies.items() if bench.queries[q] == text)

    system = BuiltSystem("reader", "answer", reader)
    result = evaluate_systems(bench, [system], level="doc", settings=settings, answer_limit=2)
    # q3 and q4 (one answerable, one not) are neither read nor scored: two exact answers of two
    assert asked == [bench.queries["q1"], bench.queries["q1"], bench.queries["q2"]]  # warm-up first
    assert result.answers is not None and result.answers["exact_match"] == pytest.approx(1 / 2)
    assert result.answers["f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert set(result.systems["reader"].per_query) == {"q1", "q2"}


def test_to_json_shape(beir_tiny: Path, settings: Settings, tmp_path: Path) -> None:
    bench = load_beir(beir_tiny)
    index = open_tiny_index(bench.documents, tmp_path)
    systems = [
        BuiltSystem(n, "retrieval", retriever_for(index, n).search) for n in ("bm25", "dense", "hybrid")
    ]
    result = evaluate_systems(bench, systems, level="doc", settings=settings)
    data = result.to_json()
    assert data["benchmark"] == "beir-tiny"
    assert data["n_queries"] == 4
    assert list(data["systems"]) == ["bm25", "dense", "hybrid"]
    for entry in data["systems"].values():
        assert list(entry) == [*RETRIEVAL_METRICS, "latency_ms"]
        assert set(entry["latency_ms"]) == {"p50", "p95"}
    assert data["answers"] is None
    assert data["query_ids"] == ["q1", "q2", "q3", "q4"]
    assert "cache_dir" not in data["settings"] and "index_dir" not in data["settings"]
    assert data["settings"]["chunk_max_chars"] == settings.chunk_max_chars
    # the versions the numbers depend on (the int8 encoder is quantized on each machine)
    from importlib.metadata import version

    assert data["machine"]["packages"]["numpy"] == version("numpy")
    assert set(data["machine"]["packages"]) == set(RECORDED_PACKAGES)
    assert f"numpy {version('numpy')}" in markdown_report(result)
    # no benchmark text in what may be committed
    text = str(data)
    assert "增值税" not in text and "展会补贴多少钱" not in text


# --- the index cache ------------------------------------------------------------------------


def test_prepare_index_builds_then_reuses(beir_tiny: Path, settings: Settings, fake_pipeline: Any) -> None:
    bench = load_beir(beir_tiny)
    first = prepare_index(bench, settings, show_progress=False)
    assert fake_pipeline.builds == 1 and not first.info.reused
    assert first.info.chunks > 0 and first.info.documents == 5
    path = Path(first.info.path)
    assert path.parent == settings.cache_dir / "eval"
    assert (path / MARKER_FILE).is_file()

    second = prepare_index(bench, settings, show_progress=False)
    assert fake_pipeline.builds == 1 and second.info.reused and second.info.path == first.info.path
    assert second.info.chunks == first.info.chunks

    changed = settings.model_copy(update={"chunk_max_chars": 200})
    assert index_cache_key(bench, changed) != index_cache_key(bench, settings)
    third = prepare_index(bench, changed, show_progress=False)
    assert fake_pipeline.builds == 2 and not third.info.reused and third.info.path != first.info.path

    # retrieval-only settings do not invalidate the index
    assert index_cache_key(
        bench, settings.model_copy(update={"rrf_k": 10, "progress": True})
    ) == index_cache_key(bench, settings)


def test_prepare_index_rebuilds_on_corpus_change(
    beir_copy: Path, settings: Settings, fake_pipeline: Any
) -> None:
    index_dir = settings.cache_dir / "mine"
    prepare_index(load_beir(beir_copy), settings, index_dir, show_progress=False)
    prepare_index(load_beir(beir_copy), settings, index_dir, show_progress=False)
    assert fake_pipeline.builds == 1
    corpus = beir_copy / "corpus.jsonl"
    corpus.write_text(corpus.read_text(encoding="utf-8").replace("增值税", "印花税"), encoding="utf-8")
    again = prepare_index(load_beir(beir_copy), settings, index_dir, show_progress=False)
    assert fake_pipeline.builds == 2 and not again.info.reused and again.info.path == str(index_dir)


def test_prepare_index_rebuilds_when_cached_index_is_broken(
    beir_tiny: Path, settings: Settings, fake_pipeline: Any
) -> None:
    bench = load_beir(beir_tiny)
    path = Path(prepare_index(bench, settings, show_progress=False).info.path)
    (path / "CURRENT").write_text("gen-999999", encoding="utf-8")  # points at no generation
    rebuilt = prepare_index(bench, settings, show_progress=False)
    assert fake_pipeline.builds == 2 and not rebuilt.info.reused


def test_interrupted_build_is_rebuilt(beir_tiny: Path, settings: Settings, fake_pipeline: Any) -> None:
    bench = load_beir(beir_tiny)
    index_dir = settings.cache_dir / "given"

    def dying_build(*args: Any, **kwargs: Any) -> dict[str, Any]:
        (index_dir / ".building-x1").mkdir(parents=True)
        (index_dir / ".lock").touch()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_index(bench, settings, index_dir, builder=dying_build, opener=fake_pipeline.open_index)
    assert json.loads((index_dir / MARKER_FILE).read_text())["state"] == "building"
    prepared = prepare_index(bench, settings, index_dir, show_progress=False)
    assert fake_pipeline.builds == 1 and not prepared.info.reused
    assert json.loads((index_dir / MARKER_FILE).read_text())["state"] == "complete"
    # leftovers without any marker (killed before the marker was written) are not "foreign" either
    (index_dir / MARKER_FILE).unlink()
    for p in index_dir.iterdir():
        if p.name not in (".lock", ".building-x1"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    prepare_index(bench, settings, index_dir, show_progress=False)
    assert fake_pipeline.builds == 2


def test_prepare_index_refuses_foreign_directory(
    beir_tiny: Path, settings: Settings, fake_pipeline: Any
) -> None:
    foreign = settings.cache_dir / "foreign"
    foreign.mkdir(parents=True)
    (foreign / "CURRENT").write_text("gen-000001")  # somebody's own policyqa index
    with pytest.raises(EvalError, match="not an index made by 'policyqa eval'"):
        prepare_index(load_beir(beir_tiny), settings, foreign, show_progress=False)
    assert (foreign / "CURRENT").exists() and fake_pipeline.builds == 0
    not_a_dir = settings.cache_dir / "file"
    not_a_dir.write_text("x")
    with pytest.raises(EvalError, match="not a directory"):
        prepare_index(load_beir(beir_tiny), settings, not_a_dir, show_progress=False)


def test_run_benchmark_end_to_end(beir_tiny: Path, settings: Settings, fake_pipeline: Any) -> None:
    bench = load_beir(beir_tiny)
    result = run_benchmark(bench, settings, systems=["bm25", "hybrid"], level="doc", show_progress=False)
    assert list(result.systems) == ["bm25", "hybrid"]
    assert result.index is not None and result.index.documents == 5
    assert result.systems["hybrid"].metrics["recall@100"] > 0
    assert result.depth == 100


def test_run_benchmark_rejects_unavailable_before_indexing(
    beir_tiny: Path, settings: Settings, fake_pipeline: Any, unavailable_system: str
) -> None:
    with pytest.raises(SystemNotAvailableError, match=f"system '{unavailable_system}' is not available yet"):
        run_benchmark(load_beir(beir_tiny), settings, systems=["bm25", unavailable_system])
    assert fake_pipeline.builds == 0


def test_settings_summary_leaves_out_secrets_paths_and_service(settings: Settings) -> None:
    custom = settings.model_copy(
        update={"api_key": SecretStr("s3cret"), "user_dict": Path("/home/me/dict.txt"), "rrf_k": 7}
    )
    summary = settings_summary(custom)
    assert "api_key" not in summary and "s3cret" not in str(summary)
    assert summary["user_dict"] == "dict.txt" and summary["rrf_k"] == 7
    assert not {"cache_dir", "index_dir", "progress", "host", "port"} & set(summary)


# --- the registry ---------------------------------------------------------------------------


def test_registry(unavailable_system: str) -> None:
    assert known_systems()[:5] == ["bm25", "dense", "hybrid", "rerank", "answer"]
    assert {"bm25", "dense", "hybrid"} <= set(available_systems())
    assert unavailable_system in known_systems() and unavailable_system not in available_systems()
    assert [s.name for s in resolve_systems(["hybrid", " BM25", "hybrid", ""])] == ["hybrid", "bm25"]
    with pytest.raises(SystemNotAvailableError, match=f"system '{unavailable_system}' is not available yet"):
        resolve_systems([unavailable_system])
    spec = resolve_systems(["bm25"])[0]
    with pytest.raises(TypeError, match="retrieval system"):
        spec.build_answer(SystemContext(index=None, settings=Settings(), depth=10))
    with pytest.raises(UnknownSystemError, match="unknown system 'bm52'"):
        resolve_systems(["bm52"])
    with pytest.raises(UnknownSystemError, match="no system given"):
        resolve_systems([])
    with pytest.raises(ValueError, match="already registered"):
        register_system("bm25", "retrieval", None)


def test_a_rerank_system_per_reranker_whatever_the_settings_name(fixture_index: Index) -> None:
    assert {"rerank-sentence", "rerank-features", "rerank-cross-encoder"} <= set(available_systems())
    assert "rerank-none" not in known_systems()
    assert default_systems() == ["bm25", "dense", "hybrid", "rerank", "answer", "answer-sentence"]
    settings = fixture_index.settings.model_copy(update={"reranker": "none"})
    context = SystemContext(index=fixture_index, settings=settings, depth=10)
    by_features = resolve_systems(["rerank-features"])[0].build_retrieval(context)
    kept = resolve_systems(["rerank"])[0].build_retrieval(context)
    want = QAPipeline(fixture_index, settings.model_copy(update={"reranker": "features"})).reranked(
        "稳岗返还", top_k=10
    )
    got = by_features("稳岗返还")
    assert got and [(h.chunk_id, h.scores["rerank"]) for h in got] == [
        (h.chunk_id, h.scores["rerank"]) for h in want
    ]
    assert all("rerank" not in h.scores for h in kept("稳岗返还"))  # 'rerank' follows the settings: none
