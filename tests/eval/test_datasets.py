"""Benchmark loaders on tiny fixture files in both formats, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyqa.eval.datasets import (
    BenchmarkFormatError,
    detect_format,
    load_beir,
    load_benchmark,
    load_squad,
)


def test_load_beir(beir_tiny: Path) -> None:
    bench = load_beir(beir_tiny)
    assert bench.name == "beir-tiny"
    assert bench.format == "beir"
    assert [d.id for d in bench.documents] == ["d1", "d2", "d3", "d4", "5"]  # integer id -> "5"
    assert bench.documents[4].title == ""
    assert bench.documents[0].title == "关于支持小微企业发展的通知"
    # q5 has no qrels: not evaluated; file order kept (blank line skipped)
    assert list(bench.queries) == ["q1", "q2", "q3", "q4"]
    assert bench.queries["q2"] == "展会补贴多少钱？"
    assert bench.qrels == {
        "q1": {"d1": 2, "d4": 0},
        "q2": {"d3": 1},
        "q3": {"d2": 1},
        "q4": {"d4": 1, "5": 1},
    }
    assert bench.answers == {
        "q1": ["增值税"],
        "q2": ["五十万元", "50万元"],
        "q3": ["提前向社区报备"],
        "q4": [],
    }
    assert bench.no_answer == {"q4"}
    # q1 as given; q2's answer_start 31 is wrong and re-located; "50万元" does not occur;
    # q3 has no corpus-id: its single gold document is used
    assert bench.answer_spans == {"q1": [("d1", 29, 32)], "q2": [("d3", 28, 32)], "q3": [("d2", 21, 28)]}
    docs = bench.doc_by_id()
    for spans in bench.answer_spans.values():
        for doc_id, start, end in spans:
            assert docs[doc_id].text[start:end] in {"增值税", "五十万元", "提前向社区报备"}
    assert any("no qrels" in n for n in bench.notes)
    assert any("re-located" in n for n in bench.notes)
    assert any("do not occur" in n for n in bench.notes)
    assert bench.has_chunk_gold and bench.has_answers


def test_load_beir_qrels_in_subdirectory(beir_copy: Path) -> None:
    (beir_copy / "qrels").mkdir()
    (beir_copy / "qrels.tsv").rename(beir_copy / "qrels" / "test.tsv")
    (beir_copy / "answers.jsonl").unlink()
    bench = load_beir(beir_copy)
    assert len(bench.queries) == 4
    assert not bench.has_chunk_gold and not bench.has_answers


def test_load_squad(squad_tiny: Path) -> None:
    bench = load_squad(squad_tiny)
    assert bench.name == "squad-tiny"
    assert bench.format == "squad"
    ids = [d.id for d in bench.documents]
    assert ids[:2] == ["P1", "P2"]
    assert len(ids[2]) == 16  # no paragraph id: a stable hash of title and context
    assert load_squad(squad_tiny).documents[2].id == ids[2]
    assert [d.title for d in bench.documents] == ["青岛市促进开放型经济发展条例"] * 2 + ["自由贸易试验区"]
    assert list(bench.queries) == ["S1", "S2", "S3", "S4", "S5"]
    assert bench.qrels["S1"] == {"P1": 1} and bench.qrels["S5"] == {ids[2]: 1}
    assert bench.answers["S1"] == ["2024年3月1日", "2024年3月1日起"]
    assert bench.no_answer == {"S4"}  # is_impossible: kept as a no-answer case
    assert "S4" in bench.queries and bench.answers["S4"] == []
    docs = bench.doc_by_id()
    for qid, spans in bench.answer_spans.items():
        for doc_id, start, end in spans:
            assert docs[doc_id].text[start:end] in bench.answers[qid]
    # S2's answer_start is wrong: re-located; S5's second answer has none: found
    assert bench.answer_spans["S2"][0][1] == docs["P1"].text.find("支持企业开拓国际市场")
    assert len(bench.answer_spans["S5"]) == 2
    assert any("re-located" in n for n in bench.notes)


def test_detect_and_load_benchmark(beir_tiny: Path, squad_tiny: Path, tmp_path: Path) -> None:
    assert detect_format(beir_tiny) == "beir"
    assert detect_format(squad_tiny) == "squad"
    assert load_benchmark(beir_tiny).format == "beir"
    assert load_benchmark(squad_tiny).format == "squad"
    folder = tmp_path / "cmrc"
    folder.mkdir()
    (folder / "dev.json").write_bytes(squad_tiny.read_bytes())
    assert load_benchmark(folder, "squad").name == "dev"
    assert load_benchmark(folder).format == "squad"
    with pytest.raises(BenchmarkFormatError, match="no such file"):
        load_benchmark(tmp_path / "missing")
    with pytest.raises(BenchmarkFormatError, match="not a directory"):
        load_benchmark(squad_tiny, "beir")


def test_limited(beir_tiny: Path) -> None:
    bench = load_beir(beir_tiny).limited(2)
    assert list(bench.queries) == ["q1", "q2"]
    assert set(bench.qrels) == {"q1", "q2"} and set(bench.answers) == {"q1", "q2"}
    assert len(bench.documents) == 5
    assert load_beir(beir_tiny).limited(None).queries.keys() == load_beir(beir_tiny).queries.keys()


def test_corpus_hash_changes_with_text(beir_copy: Path) -> None:
    before = load_beir(beir_copy).corpus_hash()
    assert load_beir(beir_copy).corpus_hash() == before
    path = beir_copy / "corpus.jsonl"
    path.write_text(path.read_text(encoding="utf-8").replace("免征增值税", "免征印花税"), encoding="utf-8")
    assert load_beir(beir_copy).corpus_hash() != before


# --- malformed input ------------------------------------------------------------------------


def _replace_line(path: Path, lineno: int, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = new
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("line", "content", "field", "message"),
    [
        (3, "q2\td3", None, "expected 3 tab-separated columns"),
        (3, "q2\td3\thigh", "score", "expected an integer relevance grade"),
        (3, "q9\td3\t1", "query-id", "'q9' is not in queries.jsonl"),
        (3, "q2\td99\t1", "corpus-id", "'d99' is not in corpus.jsonl"),
        (1, "qid\tdocid\trel", None, "expected the header"),
    ],
)
def test_malformed_qrels_names_file_and_line(
    beir_copy: Path, line: int, content: str, field: str | None, message: str
) -> None:
    qrels = beir_copy / "qrels.tsv"
    _replace_line(qrels, line, content)
    with pytest.raises(BenchmarkFormatError) as info:
        load_beir(beir_copy)
    err = info.value
    assert err.file == str(qrels)
    assert err.line == line
    assert err.field == field
    assert message in str(err)
    assert str(err).startswith(f"{qrels}:{line}: ")


def test_integer_valued_float_grade_accepted(beir_copy: Path) -> None:
    _replace_line(beir_copy / "qrels.tsv", 3, "q2\td3\t1.0")
    assert load_beir(beir_copy).qrels["q2"] == {"d3": 1}


def test_missing_qrels(beir_copy: Path) -> None:
    (beir_copy / "qrels.tsv").unlink()
    with pytest.raises(BenchmarkFormatError, match="no qrels"):
        load_beir(beir_copy)


@pytest.mark.parametrize(
    ("file", "line", "content", "field", "message"),
    [
        ("corpus.jsonl", 2, '{"_id": "d2", "title": "t"}', "text", "missing"),
        ("corpus.jsonl", 2, '{"_id": "d1", "text": "重复"}', "_id", "duplicate document id 'd1'"),
        ("corpus.jsonl", 3, '{"_id": "d3", "text": 42}', "text", "expected a string"),
        ("corpus.jsonl", 4, '{"_id": "d4", "text": "断开', None, "invalid JSON"),
        ("queries.jsonl", 1, '["q1", "text"]', None, "expected a JSON object"),
        ("queries.jsonl", 2, '{"text": "没有编号"}', "_id", "missing"),
        ("answers.jsonl", 1, '{"_id": "q1", "answers": "增值税"}', "answers", "expected a list of strings"),
        (
            "answers.jsonl",
            2,
            '{"_id": "q2", "answers": ["x"], "answer_start": "3"}',
            "answer_start",
            "integer",
        ),
        (
            "answers.jsonl",
            3,
            '{"_id": "q3", "answers": ["x"], "corpus-id": "nope"}',
            "corpus-id",
            "not in corpus",
        ),
    ],
)
def test_malformed_jsonl_names_file_line_field(
    beir_copy: Path, file: str, line: int, content: str, field: str | None, message: str
) -> None:
    _replace_line(beir_copy / file, line, content)
    with pytest.raises(BenchmarkFormatError) as info:
        load_beir(beir_copy)
    assert info.value.file == str(beir_copy / file)
    assert info.value.line == line
    assert info.value.field == field
    assert message in str(info.value)


def test_not_utf8(beir_copy: Path) -> None:
    (beir_copy / "queries.jsonl").write_bytes('{"_id": "q1", "text": "问题"}\n'.encode("gbk"))
    with pytest.raises(BenchmarkFormatError, match="not UTF-8"):
        load_beir(beir_copy)


def _squad(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_squad_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(
            _squad(
                tmp_path,
                {"data": [{"title": "t", "paragraphs": [{"context": "正文", "qas": [{"id": "x"}]}]}]},
            )
        )
    assert info.value.field == "data[0].paragraphs[0].qas[0].question"
    assert str(info.value).startswith(str(tmp_path / "bad.json"))

    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(_squad(tmp_path, {"version": "1"}))
    assert info.value.field == "data"

    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(_squad(tmp_path, {"data": [{"paragraphs": [{"qas": []}]}]}))
    assert info.value.field == "data[0].paragraphs[0].context"

    qa = {"id": "x", "question": "问", "answers": [{"text": "正", "answer_start": "0"}]}
    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(_squad(tmp_path, {"data": [{"paragraphs": [{"context": "正文", "qas": [qa]}]}]}))
    assert info.value.field == "data[0].paragraphs[0].qas[0].answers[0].answer_start"

    dup = {"data": [{"paragraphs": [{"context": "正文", "qas": [{"id": "x", "question": "问"}] * 2}]}]}
    with pytest.raises(BenchmarkFormatError, match="duplicate question id 'x'"):
        load_squad(_squad(tmp_path, dup))


def test_squad_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "data": [\n    {"title": "t",,}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(path)
    assert info.value.line == 3
    assert "invalid JSON" in str(info.value)


def test_squad_question_without_answers_is_no_answer(tmp_path: Path) -> None:
    data = {
        "data": [
            {"title": "t", "paragraphs": [{"context": "正文内容", "qas": [{"id": "x", "question": "问"}]}]}
        ]
    }
    bench = load_squad(_squad(tmp_path, data))
    assert bench.no_answer == {"x"} and bench.qrels["x"] == {bench.documents[0].id: 1}
