"""The chat page's replies, without a browser: answers, citations, escaping, problems as replies."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyqa.corpus.models import DocMeta, Document
from policyqa.pipeline import build_index
from policyqa.service import QAService
from policyqa.settings import Settings
from policyqa.ui.app import DEMO_QUESTIONS, build_ui, format_answer, respond
from tests.helpers import HashingEncoder, fixture_documents

HOSTILE = Document(
    id="x1",
    title="关于<script>alert(1)</script>的通知",
    text="关于测试的通知\n补贴标准为**每人**<img src=x onerror=alert(1)>五百元 [链接](http://evil)。",
    meta=DocMeta(issuer="测试局<b>", date="2024-01-02", doc_number="测〔2024〕1号"),
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QAService]:
    root = tmp_path_factory.mktemp("chat")
    s = Settings(cache_dir=root / "c", index_dir=root / "i", progress=False, chunk_max_chars=120)
    enc = HashingEncoder()
    build_index([*fixture_documents(), HOSTILE], s.index_dir, s, show_progress=False, encoder=enc)
    svc = QAService(s, encoder=enc)
    svc.warm_up()
    yield svc
    svc.close()


def test_reply_shows_answer_confidence_and_numbered_citations(service: QAService) -> None:
    reply, asked = asyncio.run(respond(service, "中小微企业稳岗返还比例最高是多少？", []))
    result = service.ask("中小微企业稳岗返还比例最高是多少？")
    a = result.answer
    assert asked == ["中小微企业稳岗返还比例最高是多少？"]
    assert f"答案：<strong>{a.text}</strong> [{a.citation}]" in reply
    assert re.search(r"置信度：[高中低]（0\.\d\d）", reply)
    summaries = re.findall(r"<summary>\[(\d+)\]", reply)
    assert summaries == [str(c.number) for c in a.citations]
    cited = a.citations[a.citation - 1]
    # the cited passage holds the answer, highlighted, and the document's metadata
    assert f"<mark>{a.text}</mark>" in reply
    assert f"标题：《{cited.title}》" in reply and f"发文机关：{cited.issuer}" in reply
    assert f"日期：{cited.date}" in reply and "文号：未注明" in reply


def test_follow_up_reply_says_how_it_was_understood(service: QAService) -> None:
    first = "中小微企业稳岗返还比例最高是多少？"
    reply, asked = asyncio.run(respond(service, "大型企业呢？", [first]))
    assert f"按上文理解为：{first} 大型企业呢？" in reply and asked == [first, "大型企业呢？"]


def test_document_text_cannot_inject_html_or_markdown(service: QAService) -> None:
    reply, _ = asyncio.run(respond(service, "补贴标准为多少？", [], issuers=["测试局"]))
    assert "<script>" not in reply and "<img" not in reply and "<b>" not in reply
    assert "&lt;script&gt;" in reply and "&lt;img src=x onerror=alert(1)&gt;" in reply
    assert "**" not in reply and "](http" not in reply


def test_filters_and_problems_are_replies(service: QAService) -> None:
    reply, asked = asyncio.run(respond(service, "补贴标准为多少？", [], issuers=["不存在的机关"]))
    assert "没有找到有把握的答案" in reply and asked == ["补贴标准为多少？"]
    reply, asked = asyncio.run(respond(service, "补贴？", ["x"], date_from="2024/01/01"))
    assert "YYYY-MM-DD" in reply and asked == ["x"]
    reply, _ = asyncio.run(respond(service, "补贴？", [], date_from="2024-02-01", date_to="2024-01-01"))
    assert "起始日期晚于截止日期" in reply
    too_long = "问" * (service.settings.max_query_chars + 1)
    reply, _ = asyncio.run(respond(service, too_long, []))
    assert f"上限 {service.settings.max_query_chars} 字" in reply
    reply, _ = asyncio.run(respond(service, "补贴？", [], mode="fuzzy"))
    assert reply.startswith("无法回答")


def test_not_ready_is_a_reply(tmp_path: Path) -> None:
    s = Settings(cache_dir=tmp_path / "c", index_dir=tmp_path / "i", progress=False)
    reply, _ = asyncio.run(respond(QAService(s, encoder=HashingEncoder()), "补贴？", []))
    assert reply.startswith("索引尚未就绪")


def test_no_answer_still_lists_passages(service: QAService) -> None:
    result = service.ask("补贴标准为多少？", filters=None)
    forced = result.answer.__class__(
        question="q", text="", no_answer=True, confidence=0.1, citations=result.answer.citations
    )
    reply = format_answer(result.__class__(result.question, result.searched, forced, 1.0, "gen"))
    assert "没有找到有把握的答案" in reply and "置信度：无" in reply and "<mark>" not in reply
    assert len(re.findall("<summary>", reply)) == len(result.answer.citations)


def test_page_builds_with_examples(service: QAService) -> None:
    page = build_ui(service)
    config = page.get_config_file()
    chat = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "pq-chat"][0]
    assert [e["text"] for e in chat["props"]["examples"]] == list(DEMO_QUESTIONS)
