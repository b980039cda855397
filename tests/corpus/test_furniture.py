"""Page furniture out of the text, 版头/版记 into metadata, pages known, reading order."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyqa.corpus.furniture import is_page_number, split_official_parts, strip_furniture
from policyqa.corpus.layout import Box, line_text, reading_order
from policyqa.corpus.loaders import join_pdf_lines, load_path
from policyqa.corpus.models import DocMeta
from policyqa.corpus.pages import PageLine, assemble_pages, page_at, page_starts_of
from tests.corpus.pdfs import lines_page, write_pdf


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("— 3 —", True),
        ("- 12 -", True),
        ("第3页", True),
        ("第 3 页 共 10 页", True),
        ("3/10", True),
        ("7", True),
        ("第三条", False),
        ("2024年3月1日", False),
        ("", False),
    ],
)
def test_page_numbers(line: str, expected: bool) -> None:
    assert is_page_number(line) is expected


def test_running_headers_footers_and_page_numbers_go() -> None:
    pages = [
        ["青岛市人民政府公报 2024年第3期", "第一条 正文一。", "正文二。", "— 1 —"],
        ["青岛市人民政府公报 2024年第3期", "第二条 正文三。", "— 2 —"],
        ["青岛市人民政府公报 2024年第3期", "第三条 正文四。", "第三条 正文四。", "— 3 —"],
    ]
    assert strip_furniture(pages) == [
        ["第一条 正文一。", "正文二。"],
        ["第二条 正文三。"],
        ["第三条 正文四。", "第三条 正文四。"],  # the same line twice on one page is no header
    ]


def test_a_line_on_some_pages_only_stays() -> None:
    pages = [["附件", "正文一。"], ["正文二。"], ["正文三。"], ["附件", "正文四。"]]
    assert strip_furniture(pages) == pages  # on 2 of 4 pages: under 60 %


def test_hyphenated_latin_words_are_joined() -> None:
    assert join_pdf_lines(["The WTO agreement on trade facil-", "itation applies.", "- 2 -"]) == [
        "The WTO agreement on trade facilitation applies."
    ]


OFFICIAL = [
    "000123",
    "机密★1年",
    "特急",
    "青岛市人民政府文件",
    "青政发〔2024〕3号　　签发人：张三",
    "青岛市人民政府关于促进外贸稳规模优结构的通知",
    "各区、市人民政府：",
    "现将有关事项通知如下。",
    "青岛市人民政府",
    "2024年3月1日",
    "（此件公开发布）",
    "————————",
    "抄送：市委各部门，市人大常委会办公厅，",
    "市政协办公厅。",
    "青岛市人民政府办公厅　　2024年3月2日印发",
]


def test_red_head_and_colophon_become_metadata() -> None:
    parts = split_official_parts(OFFICIAL)
    assert OFFICIAL[parts.head : len(OFFICIAL) - parts.tail] == OFFICIAL[5:11]
    assert (parts.issuer, parts.doc_number, parts.signer) == ("青岛市人民政府", "青政发〔2024〕3号", "张三")
    assert parts.cc == "市委各部门，市人大常委会办公厅，市政协办公厅。"
    assert (parts.printed_by, parts.printed_date) == ("青岛市人民政府办公厅", "2024-03-02")
    meta = DocMeta()
    parts.apply(meta)
    assert meta.issuer == "青岛市人民政府"
    assert meta.doc_number == "青政发〔2024〕3号"
    assert meta.extra["red_head"] == OFFICIAL[:5]
    assert meta.extra["colophon"] == OFFICIAL[11:]
    assert meta.extra["printed_date"] == "2024-03-02"


def test_a_document_without_red_head_keeps_its_first_lines() -> None:
    lines = ["青岛市人民政府关于促进外贸的通知", "青政发〔2024〕3号", "各区、市人民政府：", "正文。"]
    parts = split_official_parts(lines)
    assert (parts.head, parts.tail, parts.issuer, parts.doc_number) == (0, 0, None, None)


def test_page_starts_point_into_the_text() -> None:
    pages = [
        [PageLine("第一条 为了规范城市管理工作，根据"), PageLine("— 1 —")],
        [PageLine("有关法律法规的规定，制定本办法。"), PageLine("第二条 本办法自公布之日起施行。")],
        [PageLine("— 3 —")],
        [PageLine("附件", indented=True, short=True), PageLine("项目: 稳岗返还 | 标准: 50%", row=True)],
    ]
    assembled = assemble_pages(pages)
    assert assembled.text.split("\n") == [
        "第一条 为了规范城市管理工作，根据有关法律法规的规定，制定本办法。",
        "第二条 本办法自公布之日起施行。",
        "附件",
        "项目: 稳岗返还 | 标准: 50%",
    ]
    assert assembled.page_starts == [0, 17, 51, 51]  # an empty page starts where the next text does
    assert assembled.text[17:].startswith("有关法律")
    assert [page_at(assembled.page_starts, o) for o in (0, 16, 17, 50, 51, 60)] == [1, 1, 2, 2, 4, 4]
    assert page_starts_of(assembled.meta_extra()) == [0, 17, 51, 51]
    assert page_starts_of({"page_starts": "x"}) is None


def test_pdf_red_head_furniture_and_pages(tmp_path: Path) -> None:
    header = "青岛市人民政府公报"
    path = tmp_path / "notice.pdf"
    write_pdf(
        path,
        [
            lines_page(
                [
                    header,
                    "青岛市人民政府文件",
                    "青政发〔2024〕3号",
                    "关于促进外贸的通知",
                    "各区、市人民政府：",
                    "\u3000\u3000为深入贯彻落实党中央、国务院关于稳外贸的决策部署，进",
                    "— 1 —",
                ]
            ),
            lines_page(
                [
                    header,
                    "一步促进我市外贸稳规模优结构，现就有关事项通知如下。",
                    "青岛市人民政府",
                    "2024年3月1日",
                    "抄送：市委各部门。",
                    "青岛市人民政府办公厅 2024年3月2日印发",
                    "— 2 —",
                ]
            ),
        ],
    )
    (doc,) = load_path(path)
    assert doc.text.split("\n") == [
        "关于促进外贸的通知",
        "各区、市人民政府：",
        "为深入贯彻落实党中央、国务院关于稳外贸的决策部署，进一步促进我市外贸稳规模优结构，现就有关事项通知如下。",
        "青岛市人民政府",
        "2024年3月1日",
    ]
    assert doc.title == "关于促进外贸的通知"
    assert (doc.meta.issuer, doc.meta.doc_number, doc.meta.date) == (
        "青岛市人民政府",
        "青政发〔2024〕3号",
        "2024-03-01",
    )
    assert doc.meta.extra["cc"] == "市委各部门。"
    starts = doc.meta.extra["page_starts"]
    assert doc.text[starts[1] :].startswith("一步促进")


def test_two_columns_read_column_by_column() -> None:
    def line(text: str, x: float, y: float, width: float) -> Box:
        return Box(text, x, y, x + width, y + 12)

    boxes = [line("标题横跨两栏", 100, 20, 200)]
    boxes += [line(f"左{i}", 40, 60 + 20 * i, 220) for i in range(3)]
    boxes += [line(f"右{i}", 300, 60 + 20 * i, 220) for i in range(3)]
    assert [line_text(row) for row in reading_order(boxes)] == [
        "标题横跨两栏",
        "左0",
        "左1",
        "左2",
        "右0",
        "右1",
        "右2",
    ]


def test_table_cells_read_row_by_row() -> None:
    boxes = [
        Box(f"{r}{c}", 40 + 120 * c, 20 * r, 80 + 120 * c, 20 * r + 12) for r in range(3) for c in range(3)
    ]
    assert [line_text(row) for row in reading_order(boxes)] == ["00 01 02", "10 11 12", "20 21 22"]


def test_pieces_of_a_line_join_without_space_in_chinese_with_one_in_latin() -> None:
    row = [
        Box("稳岗", 0, 0, 24, 12),
        Box("返还", 25, 0, 49, 12),
        Box("WTO", 52, 0, 70, 12),
        Box("rules", 73, 0, 100, 12),
    ]
    assert line_text(row) == "稳岗返还WTO rules"


def test_a_title_ending_in_wenjian_is_no_red_head() -> None:
    lines = ["关于转发省政府文件", "各区、市人民政府：", "正文。"]
    assert split_official_parts(lines).head == 0


def test_a_framed_page_is_no_table(tmp_path: Path) -> None:
    from tests.corpus.pdfs import grid_rules

    page = lines_page(["第一条 为了规范管理，制定本办法。", "第二条 本办法自公布之日起施行。"], top=60)
    # a frame around the page, ruled under the first line: two rows of one column
    page.rules.extend(grid_rules([30, 565], [30, 90, 812]))
    path = tmp_path / "framed.pdf"
    write_pdf(path, [page])
    (doc,) = load_path(path)
    assert doc.text.split("\n") == ["第一条 为了规范管理，制定本办法。", "第二条 本办法自公布之日起施行。"]
    assert "tables" not in doc.meta.extra
