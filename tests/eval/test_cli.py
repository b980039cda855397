"""``policyqa eval`` end to end on fixture benchmarks.

Most tests run the real command line (``policyqa.cli.main``) over a fake index, so they need no
model. ``test_real_pipeline`` runs the real pipeline (chunker, BM25, dense index, hybrid fusion)
with the hashing test encoder in place of the neural model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from policyqa.cli import main
from policyqa.eval.metrics import RETRIEVAL_METRICS

PASSAGE = "对月销售额十万元以下的小规模纳税人免征增值税"
QUESTION = "小规模纳税人免征什么税"


pytestmark = pytest.mark.usefixtures("cli_env")


def test_full_run_writes_json_report_plot(
    beir_tiny: Path, tmp_path: Path, fake_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "eval",
            str(beir_tiny),
            "--level",
            "doc",
            "--systems",
            "bm25,dense,hybrid",
            "--json",
            str(out / "r.json"),
            "--report",
            str(out / "r.md"),
            "--plot",
            str(out / "r.png"),
            "--failures",
            str(out / "local" / "failures.md"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "bm25" in captured.out and "nDCG@10" in captured.out and "wall time" in captured.out

    data = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert {"benchmark", "n_queries", "systems", "answers", "settings", "index"} <= set(data)
    assert data["benchmark"] == "beir-tiny" and data["n_queries"] == 4
    assert list(data["systems"]) == ["bm25", "dense", "hybrid"]
    for entry in data["systems"].values():
        assert set(RETRIEVAL_METRICS) <= set(entry) and set(entry["latency_ms"]) == {"p50", "p95"}
    assert set(data["index"]) >= {"chunks", "build_s"} and data["index"]["chunks"] > 0
    assert data["command"].startswith(f"policyqa eval {beir_tiny} --level doc --systems bm25,dense,hybrid")

    report = (out / "r.md").read_text(encoding="utf-8")
    assert data["command"] in report
    assert "| hybrid |" in report and "## Settings" in report and "worst queries" in report
    # committed artefacts quote no benchmark text
    for artefact in (report, json.dumps(data, ensure_ascii=False)):
        assert PASSAGE not in artefact and QUESTION not in artefact

    failures = (out / "local" / "failures.md").read_text(encoding="utf-8")
    assert "## Failures" in failures and QUESTION in failures
    per_query = json.loads((out / "local" / "failures.per_query.json").read_text(encoding="utf-8"))
    assert set(per_query) == {"bm25", "dense", "hybrid"}
    assert set(per_query["bm25"]) == {"q1", "q2", "q3", "q4"}
    assert {"ndcg@10", "gold_rank"} <= set(per_query["bm25"]["q1"])

    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_reuses_index(
    beir_tiny: Path, fake_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(beir_tiny), "--systems", "bm25"]) == 0
    assert main(["eval", str(beir_tiny), "--systems", "hybrid"]) == 0
    assert fake_pipeline.builds == 1
    assert "cached index" in capsys.readouterr().out


def test_limit_and_index_dir(
    beir_tiny: Path, tmp_path: Path, fake_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no --systems: every available system runs (here two, as the fake index has no reranker)
    monkeypatch.setattr("policyqa.eval.cli.default_systems", lambda: ["hybrid", "bm25"])
    out = tmp_path / "r.json"
    index_dir = tmp_path / "bench-index"
    argv = ["eval", str(beir_tiny), "--limit", "2", "--index-dir", str(index_dir)]
    assert main([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["n_queries"] == 2 and data["query_ids"] == ["q1", "q2"]
    assert list(data["systems"]) == ["hybrid", "bm25"]
    assert (index_dir / "policyqa-eval.json").is_file()


def test_squad_chunk_level(squad_tiny: Path, tmp_path: Path, fake_pipeline: Any) -> None:
    out = tmp_path / "r.json"
    argv = ["eval", str(squad_tiny), "--format", "squad", "--level", "chunk", "--systems", "bm25,hybrid"]
    assert main([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["level"] == "chunk" and data["format"] == "squad" and data["n_queries"] == 5


def test_malformed_qrels_exits_nonzero_naming_file_and_line(
    beir_copy: Path, fake_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    qrels = beir_copy / "qrels.tsv"
    lines = qrels.read_text(encoding="utf-8").splitlines()
    lines[3] = "q2 d3"  # line 4: two columns
    qrels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(["eval", str(beir_copy), "--systems", "bm25"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{qrels}:4:" in err and "expected 3 tab-separated columns" in err
    assert "Traceback" not in err
    assert fake_pipeline.builds == 0


@pytest.mark.parametrize(
    ("systems", "message"),
    [
        ("later,bm25", "system 'later' is not available yet"),
        ("bm25,colbert", "unknown system 'colbert'"),
        (",", "no system given"),
    ],
)
def test_bad_systems_exit_2(
    beir_tiny: Path,
    fake_pipeline: Any,
    unavailable_system: str,
    capsys: pytest.CaptureFixture[str],
    systems: str,
    message: str,
) -> None:
    assert main(["eval", str(beir_tiny), "--systems", systems]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert fake_pipeline.builds == 0


def test_chunk_level_without_spans_exits_2(
    beir_copy: Path, fake_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (beir_copy / "answers.jsonl").unlink()
    assert main(["eval", str(beir_copy), "--level", "chunk", "--systems", "bm25"]) == 2
    assert "--level chunk needs chunk-level gold" in capsys.readouterr().err


def test_missing_benchmark_exits_2(
    tmp_path: Path, fake_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tmp_path / "nope"), "--systems", "bm25"]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_bad_limit_is_a_usage_error(beir_tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eval", str(beir_tiny), "--limit", "0"])
    assert info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("policyqa.corpus.chunker") is None
    or importlib.util.find_spec("policyqa.index.encoder") is None,
    reason="the real pipeline needs policyqa.corpus.chunker and policyqa.index.encoder",
)
def test_real_pipeline(beir_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``policyqa eval`` over the real index with the hashing encoder instead of the neural model."""
    from tests.helpers import HashingEncoder

    encoder = HashingEncoder()
    monkeypatch.setattr("policyqa.index.embedded.encoder_for", lambda *args, **kwargs: encoder)
    out = tmp_path / "r.json"
    assert main(["eval", str(beir_tiny), "--systems", "bm25,dense,hybrid", "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["index"]["chunks"] >= 5 and not data["index"]["reused"]
    for name in ("bm25", "dense", "hybrid"):
        # the tiny questions share words with their gold documents: BM25 finds most at rank 1
        assert 0.0 < data["systems"][name]["recall@100"] <= 1.0
    assert data["systems"]["bm25"]["mrr@10"] >= 0.5
    assert main(["eval", str(beir_tiny), "--systems", "bm25", "--json", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["index"]["reused"]


def test_sentence_rerank_probe_on_the_real_pipeline(
    beir_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe runs a suite; its (0, 0) row is the hybrid order: per half, its MRR@10 equals
    the hybrid candidates' own, and every margin is measured from it."""
    from policyqa.eval.datasets import load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.eval.splits import in_split
    from policyqa.settings import get_settings
    from policyqa.train.probe_sentence_rerank import FEATURE_WEIGHTS, SENTENCE_WEIGHTS
    from policyqa.train.probe_sentence_rerank import main as probe
    from policyqa.train.rerank import collect_candidates, doc_metrics
    from tests.helpers import HashingEncoder

    encoder = HashingEncoder()
    monkeypatch.setattr("policyqa.index.embedded.encoder_for", lambda *args, **kwargs: encoder)
    suite = tmp_path / "tiny.toml"
    suite.write_text(f'[[benchmark]]\npath = "{beir_tiny.as_posix()}"\nname = "tiny"\n', encoding="utf-8")
    out = tmp_path / "probe.json"
    report = tmp_path / "probe.md"
    assert probe(["--suite", str(suite), "--json", str(out), "--report", str(report)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    bench = load_benchmark(beir_tiny)
    assert len(data["grid"]) == len(SENTENCE_WEIGHTS) * len(FEATURE_WEIGHTS)
    chosen = data["chosen"]
    text = report.read_text(encoding="utf-8")
    assert data["command"] in text and "| w_s | w_f |" in text
    assert f"| **{chosen['sentence_weight']}** | **{chosen['feature_weight']}** |" in text
    hybrid = data["grid"][0]
    assert (hybrid["sentence_weight"], hybrid["feature_weight"]) == (0.0, 0.0)
    gold = {q: {d for d, g in v.items() if g > 0} for q, v in bench.qrels.items()}
    prepared = prepare_index(bench, get_settings(), None, show_progress=False)
    try:
        for split in ("train", "test"):
            queries = {q: t for q, t in bench.queries.items() if in_split(q, split) and gold.get(q)}
            assert data["questions"][split] == len(queries)
            groups = collect_candidates(prepared.index, queries, gold, window=20)
            if queries:
                bench_name = next(iter(hybrid[split]))
                assert hybrid[split][bench_name] == pytest.approx(doc_metrics(groups)["mrr@10"], abs=1e-4)
                assert hybrid[f"{split}_margin"][bench_name] == 0.0
            for e in data["grid"]:
                assert all(0.0 <= v <= 1.0 for v in e[split].values())
    finally:
        prepared.index.close()
