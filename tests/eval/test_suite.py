"""Suite runs: the suite file, the table with its worst row, the stage check, and the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyqa.cli import main
from policyqa.corpus.models import Document
from policyqa.eval.datasets import Benchmark
from policyqa.eval.runner import EvalResult, SystemResult
from policyqa.eval.suite import (
    StageDrop,
    SuiteEntry,
    SuiteError,
    builtin_suites,
    format_suite,
    read_suite,
    stage_drops,
    suite_table,
)
from policyqa.settings import Settings

pytestmark = pytest.mark.usefixtures("cli_env")


def _result(name: str, mrr: dict[str, float], answer: tuple[float, float] | None = None) -> EvalResult:
    bench = Benchmark(
        name=name,
        documents=[Document(id="d", title="", text="文本")],
        queries={"q": "问"},
        qrels={"q": {"d": 1}},
    )
    systems = {s: SystemResult(s, "retrieval", {"mrr@10": v}, [1.0]) for s, v in mrr.items()}
    if answer is not None:
        systems["answer"] = SystemResult("answer", "answer", {"f1": answer[0], "contains": answer[1]}, [1.0])
    return EvalResult(benchmark=bench, level="doc", depth=100, systems=systems, settings=Settings())


def test_stage_drops_compare_each_stage_with_the_best_before_it() -> None:
    results = [
        # hybrid 0.735 below dense 0.760 (not below bm25 0.680); rerank 0.749 above hybrid
        _result("citizens", {"bm25": 0.680, "dense": 0.760, "hybrid": 0.735, "rerank": 0.749}),
        # hybrid above both; rerank 0.884 below hybrid 0.893, and so is the cross-encoder
        # variant (0.880); the sentence variant is above
        _result(
            "policy",
            {
                "bm25": 0.866,
                "dense": 0.772,
                "hybrid": 0.893,
                "rerank": 0.884,
                "rerank-sentence": 0.9,
                "rerank-cross-encoder": 0.88,
            },
        ),
        # equal is not a drop; a stage that did not run is not checked
        _result("even", {"bm25": 0.5, "dense": 0.5, "hybrid": 0.5}),
    ]
    drops = stage_drops(results)
    assert drops == [
        StageDrop("citizens", "hybrid", 0.735, "dense", 0.760),
        StageDrop("policy", "rerank", 0.884, "hybrid", 0.893),
        StageDrop("policy", "rerank-cross-encoder", 0.88, "hybrid", 0.893),
    ]
    assert str(drops[0]) == "citizens: hybrid 0.7350 < dense 0.7600 (mrr@10, -0.0250)"


def test_the_table_has_one_row_per_benchmark_and_the_worst_of_each_column() -> None:
    results = [
        _result("a", {"bm25": 0.9, "hybrid": 0.8}, answer=(0.5, 0.7)),
        _result("b", {"bm25": 0.6, "hybrid": 0.95}),
    ]
    header, rows = suite_table(results)
    assert header == ["benchmark", "queries", "bm25", "hybrid", "answer F1", "answer contains"]
    assert rows == [
        ["a", "1", "0.9000", "0.8000", "0.5000", "0.7000"],
        ["b", "1", "0.6000", "0.9500", "—", "—"],
        ["worst", "", "0.6000", "0.8000", "0.5000", "0.7000"],
    ]
    assert format_suite(results).endswith("STAGE DROP a: hybrid 0.8000 < bm25 0.9000 (mrr@10, -0.1000)")
    assert format_suite(results[1:]).endswith(
        "every stage scores at least the stage before it on every benchmark"
    )


def test_read_suite_resolves_paths_and_checks_its_entries(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    suite = tmp_path / "s.toml"
    suite.write_text(
        'data = "data"\n[[benchmark]]\npath = "b1"\nsplit = "test"\nsplit_by = "gold"\n'
        '[[benchmark]]\npath = "b2.json"\nformat = "squad"\nlimit = 5\nname = "two"\nanswer_limit = 3\n',
        encoding="utf-8",
    )
    entries = read_suite(suite)
    assert entries == [
        SuiteEntry(path=(tmp_path / "data" / "b1").resolve(), split="test", split_by="gold"),
        SuiteEntry(
            path=(tmp_path / "data" / "b2.json").resolve(),
            format="squad",
            limit=5,
            name="two",
            answer_limit=3,
        ),
    ]
    assert read_suite(suite, data=Path("/elsewhere"))[0].path == Path("/elsewhere/b1")
    for body, message in (
        ('[[benchmark]]\npath = "b"\nsplit = "dev"\n', "split must be one of"),
        ('[[benchmark]]\npath = "b"\nsplitby = "gold"\n', "unknown keys splitby"),
        ('[[benchmark]]\npath = "b"\nanswer_limit = 0\n', "answer_limit must be at least 1"),
        ('[[benchmark]]\nsplit = "test"\n', "needs a path"),
        ("data = 1\n", "found none"),
        ("[[benchmark]\n", "not a readable TOML suite"),
    ):
        suite.write_text(body, encoding="utf-8")
        with pytest.raises(SuiteError, match=message):
            read_suite(suite)
    with pytest.raises(SuiteError, match="built-in name"):
        read_suite("nosuch")


def test_the_builtin_dev_suite_scores_each_benchmark_held_out_half() -> None:
    assert "dev" in builtin_suites()
    entries = read_suite("dev", data=Path("/data"))
    assert [e.path.as_posix() for e in entries] == [
        "/data/bench/ncpqa-dev",
        "/data/bench/msgabench-dev",
        "/data/bench/cmrc2018-dev/cmrc2018_dev.json",
        "/data/train/drcd-dev/DRCD_dev.json",
    ]
    assert all(e.split == "test" and e.split_by == "gold" for e in entries)


def test_cli_runs_several_benchmarks_as_one_suite(
    beir_tiny: Path, squad_tiny: Path, tmp_path: Path, fake_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["eval", str(beir_tiny), str(squad_tiny), "--systems", "bm25,dense,hybrid"]
    code = main([*argv, "--json", str(out / "s.json"), "--report", str(out / "s.md"), "--fail-on-drop"])
    captured = capsys.readouterr()
    data = json.loads((out / "s.json").read_text(encoding="utf-8"))
    assert [b["benchmark"] for b in data["benchmarks"]] == ["beir-tiny", "squad-tiny"]
    assert data["table"]["header"] == ["benchmark", "queries", "bm25", "dense", "hybrid"]
    assert [r[0] for r in data["table"]["rows"]] == ["beir-tiny", "squad-tiny", "worst"]
    assert code == (1 if data["stage_drops"] else 0), captured.err
    assert "suite: 2 benchmarks" in captured.out and "worst" in captured.out
    report = (out / "s.md").read_text(encoding="utf-8")
    assert "## Benchmark: beir-tiny" in report and "## Benchmark: squad-tiny" in report
    assert data["command"] in report and "--fail-on-drop" in data["command"]
    assert fake_pipeline.builds == 2


def test_answer_systems_skip_a_benchmark_without_answers(
    beir_tiny: Path, tmp_path: Path, fake_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = tmp_path / "no-answers"
    bench.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        (bench / name).write_bytes((beir_tiny / name).read_bytes())
    code = main(["eval", str(bench), "--systems", "bm25,answer", "--json", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert list(data["systems"]) == ["bm25"]
    assert "no reference answers: answer not run" in data["notes"]


def test_cli_suite_file_with_a_split(
    beir_tiny: Path, squad_tiny: Path, tmp_path: Path, fake_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "mine.toml"
    suite.write_text(
        f'data = "{beir_tiny.parent.as_posix()}"\n'
        '[[benchmark]]\npath = "beir-tiny"\nsplit = "test"\n'
        '[[benchmark]]\npath = "squad-tiny.json"\nname = "sq"\n',
        encoding="utf-8",
    )
    code = main(["eval", "--suite", str(suite), "--systems", "bm25", "--json", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [b["benchmark"] for b in data["benchmarks"]] == ["beir-tiny-test", "sq"]
    assert "only the 'test' split" in captured.err
    # a split shares its whole benchmark's index: a second run over the full set builds nothing
    builds = fake_pipeline.builds
    assert main(["eval", str(beir_tiny), "--systems", "bm25"]) == 0
    assert fake_pipeline.builds == builds


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--plot", "p.png"], "--plot and --failures take one benchmark"),
        (["--index-dir", "ix"], "--index-dir takes one benchmark"),
    ],
)
def test_cli_refuses_one_benchmark_options_on_a_suite(
    beir_tiny: Path, squad_tiny: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(beir_tiny), str(squad_tiny), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_without_a_benchmark_says_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 2
    assert "name a benchmark (BENCH …) or a suite (--suite dev)" in capsys.readouterr().err
    assert main(["eval", "--suite", "nosuch"]) == 2
    assert "built-in name (dev)" in capsys.readouterr().err
