"""The loaders and the chunker on the real corpora in ../shared/data (skipped when absent)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from policyqa.corpus.chunker import Chunker
from policyqa.corpus.loaders import load_path, load_paths
from tests.corpus.invariants import check_invariants

pytestmark = pytest.mark.shared


def test_lawrefbook_national(shared_dir: Path) -> None:
    docs = list(load_path(shared_dir / "corpora" / "lawrefbook_national.jsonl"))
    assert len(docs) == 1512
    assert len({d.id for d in docs}) == 1512
    by_id = {d.id: d for d in docs}
    patent = by_id["行政法规/专利代理条例(2018-11-06)"]
    assert patent.title == "专利代理条例"
    assert patent.meta.date == "2018-11-06"
    assert patent.meta.doc_type == "行政法规"
    assert patent.meta.issuer == "国务院"
    assert patent.meta.doc_number == "国务院令第706号"
    assert patent.meta.region == "全国"
    assert all(d.meta.source for d in docs)
    assert sum(1 for d in docs if d.meta.issuer) > 1400
    chunker = Chunker()
    chunks = chunker.split(patent)
    check_invariants(patent, chunks, 300)
    assert chunks[0].heading == "第一章 总则 > 第一条"
    for doc in docs[::10]:
        check_invariants(doc, chunker.split(doc), 300)


def test_lawrefbook_local_skips_records_without_text(shared_dir: Path) -> None:
    path = shared_dir / "corpora" / "lawrefbook_local.jsonl"
    report = load_paths([path])
    assert len(report.documents) == 1907
    assert [reason.split(":")[0] for _p, reason in report.errors] == [
        "line 956",
        "line 1851",
        "line 1853",
        "line 1856",
    ]
    assert {d.meta.region for d in report.documents} == {
        "山东",
        "河南",
        "浙江",
        "上海",
        "北京",
        "重庆",
        "广东",
    }
    assert {d.meta.doc_type for d in report.documents} == {"地方性法规"}


def test_gov_work_reports(shared_dir: Path) -> None:
    docs = list(load_path(shared_dir / "corpora" / "gov_work_reports.jsonl"))
    assert len(docs) == 72
    report_2022 = next(d for d in docs if d.title == "2022年中华人民共和国国务院政府工作报告")
    assert report_2022.meta.source and report_2022.meta.source.startswith("https://zh.wikisource.org/")
    assert report_2022.meta.date == "2022-03-05"
    assert report_2022.meta.issuer == "国务院"
    assert report_2022.meta.extra["year"] == "2022"
    chunks = Chunker().split(report_2022)
    check_invariants(report_2022, chunks, 300)
    assert any(c.heading.startswith("一、2021年工作回顾") for c in chunks)


def test_ncpqa_corpus(shared_dir: Path) -> None:
    docs = list(load_path(shared_dir / "bench" / "ncpqa-dev" / "corpus.jsonl"))
    assert len(docs) == 599
    assert all(d.title and len(d.title) <= 60 for d in docs)
    assert all(d.text.startswith(d.title.split(" ")[0]) for d in docs)
    chunker = Chunker(max_chars=300)
    lengths = []
    for doc in docs:
        chunks = chunker.split(doc)
        check_invariants(doc, chunks, 300)
        lengths += [len(c.text) for c in chunks]
    # one-line documents are cut structurally, not into 300-character slices
    assert 150 < statistics.mean(lengths) < 260
