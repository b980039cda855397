"""`policyqa ask`: parser, text and JSON output, explain, errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from policyqa.ask_cli import add_ask_parser, run_ask_command
from policyqa.pipeline import build_index
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, fixture_documents, use_hashing_encoder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("ask-index")
    s = Settings(cache_dir=root / "cache", index_dir=root / "index", progress=False, chunk_max_chars=120)
    build_index(fixture_documents(), s.index_dir, s, show_progress=False, encoder=HashingEncoder())
    return s


@pytest.fixture(autouse=True)
def _hashing_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    use_hashing_encoder(monkeypatch)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="policyqa")
    sub = parser.add_subparsers(dest="command")
    add_ask_parser(sub)
    return parser.parse_args(["ask", *argv])


def test_ask_text_output(built: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["青岛市南区一季度计划落地多少个重点项目？", "--index", str(built.index_dir), "--explain"])
    assert run_ask_command(args, built.model_copy(update={"answer_min_confidence": 0.0})) == 0
    out = capsys.readouterr().out
    assert "28个" in out
    assert "[1]" in out and "confidence" in out
    assert "rerank #1" in out and "fused #" in out and "best sentence 0." in out


def test_ask_json_output(built: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["稳岗返还的比例是多少？", "--index", str(built.index_dir), "--json", "--top-k", "2"])
    assert run_ask_command(args, built.model_copy(update={"answer_min_confidence": 0.0})) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"answer", "confidence", "citations", "start", "end", "doc_id", "no_answer"}
    assert 1 <= len(data["citations"]) <= 3
    doc = {d.id: d for d in fixture_documents()}[data["doc_id"]]
    assert doc.text[data["start"] : data["end"]] == data["answer"]


def test_ask_no_answer_still_lists_passages(built: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["稳岗返还的比例是多少？", "--index", str(built.index_dir), "--reranker", "none"])
    assert run_ask_command(args, built.model_copy(update={"answer_min_confidence": 1.0})) == 0
    out = capsys.readouterr().out
    assert "未找到" in out and "[1]" in out


def test_ask_errors(built: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_ask_command(_parse(["  ", "--index", str(built.index_dir)]), built) == 2
    assert run_ask_command(_parse(["问题", "--index", str(tmp_path / "none")]), built) == 1
    err = capsys.readouterr().err
    assert "policyqa ask:" in err and "Traceback" not in err
