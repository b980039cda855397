"""Loaders: each format, folders, jsonl field mapping, errors that skip one file or line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from policyqa.corpus.encoding import UnreadableFileError
from policyqa.corpus.loaders import (
    JsonlFields,
    iter_files,
    join_pdf_lines,
    load_jsonl,
    load_path,
    load_paths,
    markdown_to_text,
)
from policyqa.corpus.models import Document, stable_id
from tests.corpus.pdfs import Page, write_pdf


def _one(path: Path) -> Document:
    docs = list(load_path(path))
    assert len(docs) == 1
    return docs[0]


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> None:
    """Write a minimal PDF whose text layer holds ``pages`` (lists of lines, 12 pt on a 14 pt
    leading from the top left), CJK included (see :func:`tests.corpus.pdfs.write_pdf`)."""
    write_pdf(
        path,
        [Page(texts=[(50, 51.44 + 14 * i, line, 12) for i, line in enumerate(lines)]) for lines in pages],
        title=title,
    )


def test_txt_gb18030_with_metadata(corpus_data: Path) -> None:
    path = corpus_data / "notice_gb18030.txt"
    doc = _one(path)
    assert doc.id == stable_id(path.resolve().as_posix(), "0")
    assert doc.title == "青岛市人民政府办公厅关于印发青岛市促进外贸稳规模优结构若干措施的通知"
    assert doc.meta.source == path.name  # never a server path
    assert doc.meta.issuer == "青岛市人民政府办公厅"
    assert doc.meta.doc_number == "青政办字〔2023〕12号"
    assert doc.meta.date == "2023-06-05"
    assert doc.meta.doc_type == "通知"
    assert doc.text.startswith("青岛市人民政府办公厅文件\n\n")
    assert "促进贸易便利化" in doc.text


def test_txt_is_verbatim(tmp_path: Path) -> None:
    text = "\n\n  标题行\n\n正文第一段。\r\n正文第二段。\n"
    (tmp_path / "a.txt").write_bytes(text.encode("utf-8"))
    doc = _one(tmp_path / "a.txt")
    assert doc.text == text.replace("\r\n", "\n")
    assert doc.title == "标题行"


def test_markdown(corpus_data: Path) -> None:
    doc = _one(corpus_data / "measures.md")
    assert doc.title == "青岛市关于支持外贸企业开拓国际市场的若干措施"
    assert doc.meta.issuer == "青岛市商务局"
    assert doc.meta.doc_number == "青商字〔2024〕5号"
    assert doc.meta.date == "2024-02-20"
    assert doc.meta.doc_type == "措施"
    assert doc.text == (
        "# 青岛市关于支持外贸企业开拓国际市场的若干措施\n\n"
        "## 一、支持企业参展\n\n"
        "对企业参加境外重点展会的，按照展位费的50%给予补贴，单个展会最高支持10万元。\n\n"
        "注：每家企业每年最多支持5个展会。\n\n"
        "申请材料：\n\n"
        "参展证明\n费用凭证\n\n"
        "## 二、支持企业开展国际认证\n\n"
        "项目 | 支持比例\n国际认证 | 50%\n境外商标注册 | 30%"
    )


def test_markdown_inline_markup() -> None:
    md = (
        "Title *emphasis* and __strong__ `code` ~~gone~~ ![图](a.png) <https://gov.cn>\n"
        "```\n# not a heading? kept as code\n```\n"
        "***\n"
        "[1]: https://example.org\n"
        "1. 第一项\n"
        "snake_case_name stays"
    )
    assert markdown_to_text(md) == (
        "Title emphasis and strong code gone 图 https://gov.cn\n# not a heading? kept as code\n\n1. 第一项\nsnake_case_name stays"
    )


def test_markdown_title_from_heading(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "# 关于做好春节期间安全生产工作的通知\n\n各单位：\n\n请落实。\n", encoding="utf-8"
    )
    doc = _one(tmp_path / "a.md")
    assert doc.title == "关于做好春节期间安全生产工作的通知"
    assert doc.meta.doc_type == "通知"


def test_html(corpus_data: Path) -> None:
    doc = _one(corpus_data / "opinion.html")
    assert doc.title == "国务院关于进一步优化外商投资环境加大吸引外商投资力度的意见"
    assert doc.meta.doc_number == "国发〔2023〕11号"
    assert doc.meta.issuer == "国务院"
    assert doc.meta.date == "2023-08-13"  # <meta name="PubDate"> wins over the signature date
    assert doc.meta.doc_type == "意见"
    assert doc.text.split("\n") == [
        "国务院关于进一步优化外商投资环境加大吸引外商投资力度的意见",
        "国发〔2023〕11号",
        "各省、自治区、直辖市人民政府，国务院各部委、各直属机构：",
        "外商投资是参与中国式现代化建设、推动我国经济与世界经济深度融合的重要力量。为进一步优化外商投资环境，"
        "加大吸引外商投资力度，现提出以下意见。",
        "一、提高利用外资质量",
        "（一）加大重点领域引进外资力度。支持外商投资企业在华设立研发中心，与国内企业联合开展技术研发和产业化应用。",
        "重点任务 | 责任单位",
        "研发中心 | 科技部 商务部",
        "国务院",
        "2023年7月25日",
    ]
    for junk in ("首页", "pageId", "font-size", "版权所有", "正文结束"):
        assert junk not in doc.text


def test_html_title_from_title_tag_without_h1(tmp_path: Path) -> None:
    html = "<html><head><title>关于开展安全检查的通知 - 青岛市应急管理局</title></head><body><p>各单位：</p><p>请落实。</p></body></html>"
    (tmp_path / "a.htm").write_text(html, encoding="utf-8")
    doc = _one(tmp_path / "a.htm")
    assert doc.title == "关于开展安全检查的通知"
    assert doc.text == "各单位：\n请落实。"


def test_html_gbk_encoded(tmp_path: Path) -> None:
    html = '<html><head><meta charset="gbk"><title>通知</title></head><body><h1>关于延期开学的通知</h1><p>各学校：现将有关事项通知如下。</p></body></html>'
    (tmp_path / "a.html").write_bytes(html.encode("gbk"))
    doc = _one(tmp_path / "a.html")
    assert doc.title == "关于延期开学的通知"
    assert "各学校：现将有关事项通知如下。" in doc.text


def test_docx(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_heading("青岛市关于支持企业参展的通知", level=1)
    d.add_paragraph("青商字〔2024〕6号")
    d.add_paragraph("各区市商务主管部门：")
    d.add_paragraph("一、支持范围")
    d.add_paragraph("对企业参加境外重点展会的，按照展位费的50%给予补贴。")
    table = d.add_table(rows=2, cols=3)
    for i, text in enumerate(["展会", "补贴比例", "上限"]):
        table.rows[0].cells[i].text = text
    table.rows[1].cells[0].text = "广交会"
    merged = table.rows[1].cells[1].merge(table.rows[1].cells[2])
    merged.text = "50%"
    d.add_paragraph("青岛市商务局")
    d.add_paragraph("2024年3月1日")
    path = tmp_path / "notice.docx"
    d.save(str(path))
    doc = _one(path)
    assert doc.text.split("\n") == [
        "青岛市关于支持企业参展的通知",
        "青商字〔2024〕6号",
        "各区市商务主管部门：",
        "一、支持范围",
        "对企业参加境外重点展会的，按照展位费的50%给予补贴。",
        "展会: 广交会 | 补贴比例: 50%",
        "青岛市商务局",
        "2024年3月1日",
    ]
    assert doc.title == "青岛市关于支持企业参展的通知"
    assert doc.meta.doc_number == "青商字〔2024〕6号"
    assert doc.meta.date == "2024-03-01"
    assert doc.meta.issuer == "青岛市商务局"


def test_pdf_lines_joined(tmp_path: Path) -> None:
    path = tmp_path / "notice.pdf"
    make_pdf(
        path,
        [
            [
                "青岛市人民政府关于促进外贸",
                "稳规模优结构的通知",
                "各区、市人民政府，市政府各部门：",
                "为深入贯彻落实党中央、国务院关于稳外贸的决策部署，进一",
                "步促进我市外贸稳规模优结构，现就有关事项通知如下。",
                "一、加大金融支持力度",
                "对外贸企业的融资需求给予优先支持，降低企业综合融资成",
                "- 1 -",
            ],
            ["本，扩大出口信用保险覆盖面。", "青岛市人民政府", "2023年6月5日"],
        ],
    )
    doc = _one(path)
    assert doc.text.split("\n") == [
        "青岛市人民政府关于促进外贸",
        "稳规模优结构的通知",
        "各区、市人民政府，市政府各部门：",
        "为深入贯彻落实党中央、国务院关于稳外贸的决策部署，进一步促进我市外贸稳规模优结构，现就有关事项通知如下。",
        "一、加大金融支持力度",
        "对外贸企业的融资需求给予优先支持，降低企业综合融资成本，扩大出口信用保险覆盖面。",
        "青岛市人民政府",
        "2023年6月5日",
    ]
    assert doc.title == "青岛市人民政府关于促进外贸稳规模优结构的通知"
    assert doc.meta.issuer == "青岛市人民政府"
    assert doc.meta.date == "2023-06-05"
    assert doc.meta.extra["pages"] == 2
    starts = doc.meta.extra["page_starts"]
    assert starts[0] == 0
    assert doc.text[starts[1] :].startswith("本，扩大")


def test_pdf_title_from_metadata(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    make_pdf(path, [["第一条 为了规范管理，制定本办法。"]], title="青岛市示范管理办法")
    doc = _one(path)
    assert doc.title == "青岛市示范管理办法"
    assert doc.meta.doc_type == "办法"


def test_pdf_without_text_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    make_pdf(path, [[]])
    with pytest.raises(UnreadableFileError, match="no extractable text"):
        list(load_path(path))


def test_broken_pdf_and_docx_are_unreadable(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf")
    (tmp_path / "b.docx").write_bytes(b"PK\x03\x04 not a zip")
    report = load_paths([tmp_path])
    assert report.documents == []
    assert sorted(Path(p).name for p, _reason in report.errors) == ["a.pdf", "b.docx"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["第一章 总则", "第一条 为了规范管理，根据有关法律", "规定，制定本办法。"],
            ["第一章 总则", "第一条 为了规范管理，根据有关法律规定，制定本办法。"],
        ),
        (["（一）加强组织领导；", "（二）强化督促检查。"], ["（一）加强组织领导；", "（二）强化督促检查。"]),
        (
            ["各单位要切实加强组织领导，认真落实各项", "1．建立工作专班", "2．加强督查"],
            ["各单位要切实加强组织领导，认真落实各项", "1．建立工作专班", "2．加强督查"],
        ),
        (
            ["This policy applies to all", "enterprises in the zone."],
            ["This policy applies to all enterprises in the zone."],
        ),
        (["第 2 页", "3/10", "— 4 —", "正文。"], ["正文。"]),
        (["第一段结束。", "", "第二段。"], ["第一段结束。", "第二段。"]),
    ],
)
def test_join_pdf_lines(lines: list[str], expected: list[str]) -> None:
    assert join_pdf_lines(lines) == expected


# --------------------------------------------------------------------------------------------
# jsonl
# --------------------------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[object]) -> None:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
        encoding="utf-8",
    )


def test_jsonl_beir_corpus(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    _write_jsonl(
        path,
        [
            {
                "_id": "a1",
                "title": "",
                "text": "泰州市人民政府关于支持中小企业抗疫情渡难关促发展的政策措施 各市（区）人民政府：为深入贯彻……",
            },
            {"_id": "a2", "title": "已有标题", "text": "正文。"},
        ],
    )
    docs = list(load_path(path))
    assert [d.id for d in docs] == ["a1", "a2"]
    assert docs[0].title == "泰州市人民政府关于支持中小企业抗疫情渡难关促发展的政策措施"
    assert docs[0].meta.issuer == "泰州市人民政府"
    assert docs[1].title == "已有标题"
    assert docs[0].meta.source == path.name
    assert docs[0].meta.extra["line"] == 1


def test_jsonl_gov_work_report_style(tmp_path: Path) -> None:
    path = tmp_path / "reports.jsonl"
    text = "政府工作报告\n——2022年3月5日在第十三届全国人民代表大会第五次会议上\n\n各位代表：\n\n现在，我代表国务院，向大会报告政府工作。"
    _write_jsonl(
        path,
        [
            {
                "title": "2022年中华人民共和国国务院政府工作报告",
                "url": "https://zh.wikisource.org/wiki/x",
                "content": text,
                "year": "2022",
            }
        ],
    )
    doc = _one(path)
    assert doc.id == stable_id(path.resolve().as_posix(), "0")
    assert doc.text == text
    assert doc.meta.source == "https://zh.wikisource.org/wiki/x"
    assert doc.meta.date == "2022-03-05"
    assert doc.meta.issuer == "国务院"
    assert doc.meta.doc_type == "报告"
    assert doc.meta.extra["year"] == "2022"


def test_jsonl_lawrefbook_national(tmp_path: Path) -> None:
    path = tmp_path / "laws.jsonl"
    record = {
        "id": "行政法规/专利代理条例(2018-11-06)",
        "title": "专利代理条例",
        "file_date": "2018-11-06",
        "category": "行政法规",
        "subdir": "",
        "info": [
            "1991年3月4日 中华人民共和国国务院令第76号发布",
            "2018年9月6日 国务院第23次常务会议修订通过",
            "2018年11月6日 中华人民共和国国务院令第706号公布",
        ],
        "info_doc_number_lines": [
            "1991年3月4日 中华人民共和国国务院令第76号发布",
            "2018年11月6日 中华人民共和国国务院令第706号公布",
        ],
        "source_path": "行政法规/专利代理条例(2018-11-06).md",
        "text": "## 第一章 总则\n\n第一条 为了规范专利代理行为，制定本条例。",
    }
    law = dict(
        record,
        id="宪法相关法/示范法",
        title="中华人民共和国示范法",
        category="宪法相关法",
        file_date=None,
        info=[
            "2002年8月29日 第九届全国人民代表大会常务委员会第二十九次会议通过",
            "2002年8月29日 中华人民共和国主席令第七十三号公布",
        ],
        info_doc_number_lines=["2002年8月29日 中华人民共和国主席令第七十三号公布"],
    )
    rule = dict(
        record,
        id="部门规章/示范规定",
        title="示范规定",
        category="部门规章",
        subdir="市场监督管理总局",
        info=[],
        info_doc_number_lines=[],
    )
    _write_jsonl(path, [record, law, rule])
    reg, law_doc, rule_doc = list(load_path(path))
    assert reg.id == "行政法规/专利代理条例(2018-11-06)"
    assert reg.meta.date == "2018-11-06"
    assert reg.meta.doc_type == "行政法规"
    assert reg.meta.issuer == "国务院"
    assert reg.meta.doc_number == "国务院令第706号"
    assert reg.meta.region == "全国"
    assert reg.meta.extra["category"] == "行政法规"
    assert reg.meta.extra["source_path"] == "行政法规/专利代理条例(2018-11-06).md"
    assert law_doc.meta.doc_type == "法律"
    assert law_doc.meta.issuer == "全国人民代表大会常务委员会"
    assert law_doc.meta.doc_number == "主席令第七十三号"
    assert law_doc.meta.date is None
    assert rule_doc.meta.issuer == "市场监督管理总局"
    assert rule_doc.meta.doc_type == "部门规章"


def test_jsonl_lawrefbook_local(tmp_path: Path) -> None:
    path = tmp_path / "local.jsonl"
    record = {
        "id": "DLC/上海地方法规/地方性法规/上海/上海口岸服务条例(2020-05-14)",
        "title": "上海口岸服务条例",
        "file_date": "2020-05-14",
        "category": "上海地方法规",
        "subdir": "地方性法规/上海",
        "info": ["2011年11月17日 上海市第十三届人民代表大会常务委员会第三十次会议通过"],
        "info_doc_number_lines": [],
        "text": "## 第一章  总则\n\n第一条 为了规范口岸开放，制定本条例。",
    }
    _write_jsonl(path, [record])
    doc = _one(path)
    assert doc.meta.region == "上海"
    assert doc.meta.doc_type == "地方性法规"
    assert doc.meta.issuer == "上海市人民代表大会常务委员会"
    assert doc.meta.extra["category"] == "上海地方法规"


def test_jsonl_explicit_fields(tmp_path: Path) -> None:
    path = tmp_path / "custom.jsonl"
    _write_jsonl(
        path,
        [
            {
                "key": "k1",
                "headline": "关于开展检查的通知",
                "body_text": "各单位：请落实。",
                "pub": "2024年2月18日",
                "org": "青岛市应急管理局",
                "link": "https://qingdao.gov.cn/1",
            }
        ],
    )
    fields = JsonlFields(id="key", title="headline", text="body_text", date="pub", issuer="org", url="link")
    doc = _one_with(path, fields)
    assert doc.id == "k1"
    assert doc.title == "关于开展检查的通知"
    assert doc.text == "各单位：请落实。"
    assert doc.meta.date == "2024-02-18"
    assert doc.meta.issuer == "青岛市应急管理局"
    assert doc.meta.source == "https://qingdao.gov.cn/1"
    assert doc.meta.doc_type == "通知"


def _one_with(path: Path, fields: JsonlFields) -> Document:
    docs = list(load_path(path, fields=fields))
    assert len(docs) == 1
    return docs[0]


def test_jsonl_bad_lines_are_skipped_and_named(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    _write_jsonl(
        path,
        [
            {"id": "ok1", "text": "第一篇。"},
            '{"id": "broken", "text": ',
            "",
            "[1, 2, 3]",
            {"id": "no-text", "title": "只有标题"},
            {"id": "ok2", "text": "第二篇。"},
        ],
    )
    report = load_paths([path])
    assert [d.id for d in report.documents] == ["ok1", "ok2"]
    assert [(p, reason.split(":")[0]) for p, reason in report.errors] == [
        (str(path), "line 2"),
        (str(path), "line 4"),
        (str(path), "line 5"),
    ]
    assert "invalid JSON" in report.errors[0][1]
    assert "JSON object" in report.errors[1][1]
    assert "no text" in report.errors[2][1]


def test_jsonl_text_with_line_separator_characters(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    record = {"id": "u2028", "text": "第一句。\u2028第二句。\r\n第三句。"}
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    assert "\u2028" in path.read_text(encoding="utf-8")
    doc = _one(path)
    assert doc.text == "第一句。\u2028第二句。\n第三句。"


def test_jsonl_bad_line_without_handler_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "mixed.jsonl"
    _write_jsonl(path, [{"id": "ok1", "text": "第一篇。"}, "{oops"])
    with caplog.at_level(logging.WARNING, logger="policyqa.corpus.loaders"):
        docs = list(load_jsonl(path))
    assert [d.id for d in docs] == ["ok1"]
    assert "line 2" in caplog.text


# --------------------------------------------------------------------------------------------
# folders and errors
# --------------------------------------------------------------------------------------------


def _tree(root: Path) -> None:
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("第一份文件。", encoding="utf-8")
    (root / "b" / "c.md").write_text("# 第二份\n\n正文。", encoding="utf-8")
    (root / "b" / "d.jsonl").write_text('{"id": "j1", "text": "第三份。"}\n', encoding="utf-8")
    (root / "b" / "image.gif").write_bytes(b"GIF89a")  # not a format policyqa reads
    (root / ".hidden").mkdir()
    (root / ".hidden" / "e.txt").write_text("隐藏。", encoding="utf-8")
    (root / "~$lock.docx").write_bytes(b"lock")
    (root / "Z.TXT").write_text("大写扩展名。", encoding="utf-8")


def test_folder_recursive_sorted_known_extensions(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)] == [
        "Z.TXT",
        "a.txt",
        "b/c.md",
        "b/d.jsonl",
    ]
    docs = list(load_path(tmp_path))
    assert [d.text for d in docs] == ["大写扩展名。", "第一份文件。", "# 第二份\n\n正文。", "第三份。"]
    assert all(d.meta.source for d in docs)
    assert len({d.id for d in docs}) == 4


def test_unreadable_file_is_skipped_and_named(tmp_path: Path) -> None:
    _tree(tmp_path)
    bad = tmp_path / "b" / "broken.txt"
    bad.write_bytes(bytes(range(256)) * 8)
    report = load_paths([tmp_path])
    assert len(report.documents) == 4
    assert len(report.errors) == 1
    assert report.errors[0][0] == str(bad)
    assert not report.ok
    assert report.summary() == "4 documents; 1 skipped"


def test_unreadable_file_raises_without_handler(tmp_path: Path) -> None:
    bad = tmp_path / "broken.txt"
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UnreadableFileError) as info:
        list(load_path(bad))
    assert info.value.path == str(bad)


def test_empty_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("  \n\n", encoding="utf-8")
    report = load_paths(tmp_path)
    assert report.documents == []
    assert report.errors == [(str(tmp_path / "empty.txt"), "empty file")]


def test_unsupported_file_given_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK")
    report = load_paths([path])
    assert report.documents == []
    assert "unsupported file type '.xlsx'" in report.errors[0][1]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        list(load_path(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="nope"):
        load_paths([tmp_path, tmp_path / "nope"])


def test_duplicate_ids_are_reported(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "a.jsonl", [{"id": "same", "text": "一。"}])
    _write_jsonl(tmp_path / "b.jsonl", [{"id": "same", "text": "二。"}])
    report = load_paths([tmp_path])
    assert [d.text for d in report.documents] == ["一。"]
    assert "duplicate document id 'same'" in report.errors[0][1]


def test_ids_are_stable_across_loads(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert [d.id for d in load_path(tmp_path)] == [d.id for d in load_path(tmp_path)]


def test_sources_are_named_relative_to_what_was_indexed(tmp_path: Path) -> None:
    """Regression (hardening issue, finding 4): ``source`` held the absolute server path."""
    root = tmp_path / "政策库"
    (root / "2024").mkdir(parents=True)
    (root / "2024" / "a.txt").write_text("关于稳岗返还的通知\n正文。", encoding="utf-8")
    (root / "b.md").write_text("# 关于社保补贴的通知\n正文。", encoding="utf-8")
    (root / "c.jsonl").write_text(
        '{"id": "x1", "text": "正文一。"}\n{"id": "x2", "text": "正文二。", "url": "https://gov.cn/2"}\n',
        encoding="utf-8",
    )
    sources = sorted(d.meta.source or "" for d in load_paths(root).documents)
    assert sources == ["https://gov.cn/2", "政策库/2024/a.txt", "政策库/b.md", "政策库/c.jsonl"]
    # one file given: its name; ids still derive from the absolute path (unchanged)
    (doc,) = load_paths(root / "2024" / "a.txt").documents
    assert doc.meta.source == "a.txt"
    assert doc.id == stable_id((root / "2024" / "a.txt").resolve().as_posix(), "0")


@pytest.mark.parametrize("bad_id", ["a//b", "../etc", "a/./b", "/abs", "a/", "..", "a\\\\b"])
def test_jsonl_ids_that_no_url_can_reach_are_refused(tmp_path: Path, bad_id: str) -> None:
    """Regression (hardening issue, finding 6): such ids were stored but unreachable."""
    path = tmp_path / "d.jsonl"
    lines = [{"id": bad_id, "text": "正文一。"}, {"id": "部门规章/总局/办法(2021)", "text": "正文二。"}]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    report = load_paths(path)
    assert [d.id for d in report.documents] == ["部门规章/总局/办法(2021)"]
    assert len(report.errors) == 1 and report.errors[0][1].startswith("line 1: ")
