"""The rerank ceiling: exact expected reciprocal ranks, and a run over the real pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policyqa.train.rerank_ceiling import content_ceiling_rr, is_copy, main, reciprocal_rank


def test_reciprocal_rank_counts_the_first_relevant_within_k() -> None:
    assert reciprocal_rank(["a", "b", "c"], {"c", "b"}) == 0.5
    assert reciprocal_rank(["a", "b", "c"], {"z"}) == 0.0
    assert reciprocal_rank([f"d{i}" for i in range(12)], {"d10"}) == 0.0  # beyond @10
    assert reciprocal_rank([f"d{i}" for i in range(12)], {"d10"}, k=11) == pytest.approx(1 / 11)


def test_content_ceiling_is_the_gold_copy_at_a_random_place_among_the_holders() -> None:
    assert content_ceiling_rr(1) == 1.0
    assert content_ceiling_rr(2) == pytest.approx((1 + 1 / 2) / 2)
    assert content_ceiling_rr(3) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    # places beyond 10 score 0 in RR@10
    assert content_ceiling_rr(12) == pytest.approx(sum(1 / i for i in range(1, 11)) / 12)
    # two relevant among three: the first relevant is at place 1 (2/3) or 2 (1/3)
    assert content_ceiling_rr(3, gold=2) == pytest.approx(2 / 3 + 1 / 3 / 2)
    assert content_ceiling_rr(2, gold=2) == 1.0
    for bad in ((0, 1), (2, 0), (2, 3)):
        with pytest.raises(ValueError, match="gold <= holders"):
            content_ceiling_rr(*bad)


def test_a_copy_holds_the_passage_not_just_the_answer() -> None:
    passage = "今年我区将持续发力招商引资，力争一季度落地重点项目28个，总投资约120亿元，全年完成投资任务"
    assert is_copy(passage, "转发通知：" + passage + "。特此通知。")
    # one character changed still leaves most 5-grams (re-published with an edit)
    assert is_copy(passage, passage.replace("约", "近"))
    # the short answer alone in another document is no copy
    assert not is_copy(passage, "某县全年新建学校28个。")
    assert not is_copy(passage, passage[:30], overlap=0.8)
    assert is_copy("28个", "新建28个") and not is_copy("28个", "新建29个")


def test_a_copy_of_the_answer_lowers_the_ceiling(
    beir_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """beir-tiny plus a re-published copy of q2's gold document: q2 has two answer holders."""
    from tests.helpers import HashingEncoder

    encoder = HashingEncoder()
    monkeypatch.setattr("policyqa.index.embedded.encoder_for", lambda *args, **kwargs: encoder)
    monkeypatch.setenv("POLICYQA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("POLICYQA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("POLICYQA_PROGRESS", "false")
    monkeypatch.chdir(tmp_path)
    bench = tmp_path / "beir-copy"
    shutil.copytree(beir_tiny, bench)
    corpus = (bench / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    d3 = json.loads(next(line for line in corpus if '"d3"' in line))
    copy = {"_id": "d6", "title": "转发：" + d3["title"], "text": d3["text"]}
    (bench / "corpus.jsonl").write_text("\n".join([*corpus, json.dumps(copy, ensure_ascii=False)]) + "\n")
    out, report = tmp_path / "ceiling.json", tmp_path / "ceiling.md"
    assert main([str(bench), "--json", str(out), "--report", str(report)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    every = data["splits"]["all"]
    assert every["questions"] == 4  # q1 … q4 have gold documents
    assert every["gold_in_window"] == 1.0
    # q2's gold d3 and its copy d6 hold 五十万元: that question's ceiling is (1 + 1/2) / 2
    # (q4's two gold documents are no copies: either first scores 1)
    assert every["with_copies"] == 0.25
    assert every["content_ceiling"] == pytest.approx(round((3 + 0.75) / 4, 4))
    assert every["qrels_oracle"] == 1.0
    for name in ("hybrid", "rerank"):
        assert 0.0 < every[name] <= every[f"{name}_lenient"] <= 1.0
    assert data["splits"]["train"]["questions"] + data["splits"]["test"]["questions"] == 4
    assert "| all | 4 |" in report.read_text(encoding="utf-8")


def test_missing_benchmark_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main([str(tmp_path / "nowhere")])
    assert err.value.code == 2
    assert "no such file" in capsys.readouterr().err
