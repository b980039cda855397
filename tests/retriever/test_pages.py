"""Passages of paged sources know their page: hits, citations, the API's and the CLI's JSON."""

from __future__ import annotations

from pathlib import Path

from policyqa.answer.types import citations_from_hits
from policyqa.corpus.loaders import load_paths
from policyqa.pipeline import build_index, open_index
from policyqa.retriever.factory import retriever_for
from policyqa.settings import Settings
from tests.corpus.pdfs import lines_page, write_pdf
from tests.helpers import HashingEncoder


def test_hits_and_citations_carry_the_page(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(
        docs / "notice.pdf",
        [
            lines_page(
                ["关于稳岗返还的通知", "第一条 各地要落实援企稳岗政策，支持企业稳定就业岗位。", "— 1 —"]
            ),
            lines_page(["第二条 稳岗返还比例为企业上年度实际缴纳失业保险费的百分之五十。", "— 2 —"]),
        ],
    )
    (docs / "plain.txt").write_text("第一条 技能提升补贴按每人每年一次发放。", encoding="utf-8")
    report = load_paths([docs])
    settings = Settings(
        cache_dir=tmp_path / "cache", index_dir=tmp_path / "index", progress=False, chunk_max_chars=50
    )
    encoder = HashingEncoder()
    build_index(report.documents, settings.index_dir, settings, show_progress=False, encoder=encoder)
    index = open_index(settings.index_dir, settings, encoder=encoder)
    try:
        retriever = retriever_for(index, "bm25")
        (top, *_rest) = retriever.search("稳岗返还比例 失业保险费", top_k=3)
        assert top.text.startswith("第二条")
        assert top.page == 2
        assert top.to_dict()["page"] == 2
        (skills, *_rest) = retriever.search("技能提升补贴", top_k=1)
        assert skills.page is None
        first = retriever.search("援企稳岗政策", top_k=1)[0]
        assert first.page == 1
    finally:
        index.close()
    citation = citations_from_hits([top])[0]
    assert citation.page == 2
    assert citation.label().endswith(" · 第 2 页")
    assert citation.to_dict()["page"] == 2
