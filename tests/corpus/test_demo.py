"""The built-in demo corpus."""

from __future__ import annotations

from pathlib import Path

from policyqa.corpus.chunker import Chunker
from policyqa.corpus.demo import DEMO_EVENT_DATE, DEMO_PATH, load_demo
from policyqa.corpus.encoding import read_text

HEADLINES = [
    "稳扎稳打有干头",
    "扩大开放、狠抓招商，奋力谱写高质量发展新篇章",
    "提升功能区发展能级 增强示范引领新成效",
]


def test_demo_file_ships_with_the_package() -> None:
    assert DEMO_PATH.is_file()
    assert DEMO_PATH.name == "qingdao-opening-up-2024.txt"


def test_three_articles_with_their_headlines() -> None:
    docs = load_demo()
    assert [d.title for d in docs] == HEADLINES
    assert len({d.id for d in docs}) == 3
    assert [d.id for d in docs] == [d.id for d in load_demo()]


def test_metadata() -> None:
    for doc in load_demo():
        assert doc.meta.issuer == "青岛日报"
        assert doc.meta.region == "青岛"
        assert doc.meta.doc_type == "新闻"
        assert doc.meta.date is None  # the text names the conference day, not the print date
        assert doc.meta.extra["event_date"] == DEMO_EVENT_DATE == "2024-02-18"
        assert doc.meta.source == str(DEMO_PATH)
        assert doc.meta.extra["byline"].startswith("□青岛日报/观海新闻记者")
    first, second, third = load_demo()
    assert first.meta.extra["subtitle"] == "新春开新局，擂响大开放大招商“奋进鼓”"
    assert first.meta.extra["reporters"] == ["刘兰星", "杨光", "孙欣", "周晓峰"]
    assert second.meta.extra["subtitle"].startswith("青岛各区市认真收听收看")
    assert third.meta.extra["subtitle"].startswith("青岛各功能区表示")


def test_texts_are_verbatim_slices_of_the_file() -> None:
    raw = read_text(DEMO_PATH)
    docs = load_demo()
    for doc in docs:
        offset = doc.meta.extra["offset"]
        assert raw[offset : offset + len(doc.text)] == doc.text
        assert doc.text.startswith(doc.title)
        assert doc.text == doc.text.rstrip()
    # the three articles cover the file's text, in order
    assert "".join(raw.split()) == "".join("".join(d.text.split()) for d in docs)


def test_customs_paragraph_in_the_first_article() -> None:
    first = load_demo()[0]
    paragraph = next(p for p in first.text.split("\n") if "促进贸易便利化" in p)
    assert paragraph.startswith("全力服务发展大局。")
    assert "海关" in paragraph
    assert all("促进贸易便利化" not in d.text for d in load_demo()[1:])


def test_demo_chunks_cite_exactly() -> None:
    chunker = Chunker()
    for doc in load_demo():
        chunks = chunker.split(doc)
        assert chunks
        for c in chunks:
            assert doc.text[c.start : c.end] == c.text
            assert len(c.text) <= 300
    headings = {c.heading for c in chunker.split(load_demo()[0])}
    assert {"以高水平开放助推高质量发展", "打造“投资青岛”招商品牌", "搭建高端对外交流合作平台"} <= headings


def test_demo_copy_matches_shared_data(shared_dir: Path) -> None:
    shared = shared_dir / "demo" / "qingdao-opening-up-2024.txt"
    assert DEMO_PATH.read_bytes() == shared.read_bytes()
